package event

// The span contract between the plugin (which writes status spans) and the
// exporter (which reads them). OpenTelemetry semantic conventions are used
// where one exists; everything else carries the single "statustrace." prefix.
const (
	// ScopeName is the instrumentation scope of every status span. The
	// exporter uses it to tell status spans from other spans in the pipeline.
	ScopeName = "github.com/statustrace/statustrace/plugin"

	AttrTenant     = "cloud.account.id"   // semconv: the account (tenant)
	AttrFunction   = "faas.name"          // semconv: function name
	AttrQualifier  = "faas.version"       // semconv: version or alias
	AttrRequestID  = "faas.invocation_id" // semconv: the event's request ID
	AttrNamespace  = "statustrace.namespace"
	AttrInvokeType = "statustrace.invoke_type"
	AttrSeq        = "statustrace.seq"     // int
	AttrAttempt    = "statustrace.attempt" // int
	AttrFromState  = "statustrace.from_state"
	AttrToState    = "statustrace.to_state"
	AttrErrorCode  = "error.type" // semconv: error class/code
	AttrErrorMsg   = "statustrace.error.message"
	AttrNode       = "statustrace.node"
	// AttrSpanRole is "transition" on the span that ends at a state change and
	// "event" on the root span that covers the whole event.
	AttrSpanRole = "statustrace.span_role"
	// AttrEventStartUnixNano (int, Unix ns) is on the transition span of a
	// terminal transition when the plugin knows when the event began (its
	// first transition): the exporter stores the event's end-to-end
	// duration from it.
	AttrEventStartUnixNano = "statustrace.event.start_time_unix_nano"
)

// Values of AttrSpanRole.
const (
	RoleTransition = "transition"
	RoleEvent      = "event"
)
