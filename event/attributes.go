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
)

// Values of AttrSpanRole.
const (
	RoleTransition = "transition"
	RoleEvent      = "event"
)
