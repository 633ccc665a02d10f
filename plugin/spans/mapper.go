package spans

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/trace"

	"github.com/statustrace/statustrace/event"
)

// Validate rejects transitions that cannot become a meaningful status span
// (the rules are event.Transition.Validate's). Free text is not rejected:
// the error message is cut to its limit.
func Validate(t *event.Transition) error { return t.Validate() }

// tracker remembers, per event, what the span starts of its next
// transitions depend on: its first transition's time and its last few
// transitions. The Sink calls it under its lock, in stream order, before a
// batch is spooled; the spans themselves are built later, by any export
// worker, from the transition and the starts alone (emit).
type tracker struct {
	states *states
}

func newTracker(maxStates int) *tracker { return &tracker{states: newStates(maxStates)} }

// track returns the start of t's transition span (the previous
// transition's time, or t's own when that is unknown) and the start of its
// event (0 if unknown), and remembers t.
func (k *tracker) track(t *event.Transition) (start, eventStart int64) {
	st := k.states.get(t.RequestID)
	start = t.TimeUnixNano
	if t.From == event.StateNone {
		st.firstTime = t.TimeUnixNano
	} else if p, ok := st.previous(t.Seq, t.From); ok && p.time <= t.TimeUnixNano {
		start = p.time
	}
	st.remember(seen{seq: t.Seq, state: t.To, time: t.TimeUnixNano})
	eventStart = st.firstTime
	if t.To.Terminal() {
		k.states.retire(t.RequestID)
	}
	return start, eventStart
}

// builder turns staged transitions into OTLP spans (the collector's pdata
// model, which marshals several times faster than the SDK's span
// snapshots; see plugin/README.md). One per export worker: it is not safe
// for concurrent use.
type builder struct {
	resource pcommon.Resource
	hash     idHasher
}

func newBuilder(res pcommon.Resource) *builder { return &builder{resource: res} }

// newBatch returns an empty request body: one resource, one scope.
func (b *builder) newBatch(capacity int) (ptrace.Traces, ptrace.SpanSlice) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	b.resource.CopyTo(rs.Resource())
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(event.ScopeName)
	spans := ss.Spans()
	spans.EnsureCapacity(capacity + capacity/4)
	return td, spans
}

// OTLP span flags: W3C sampled, and whether the parent is remote.
const (
	flagSampled        = 0x01
	flagHasIsRemote    = 0x100
	flagParentIsRemote = 0x200
)

// emit appends the spans of one valid transition: always its transition
// span, and the event's root span when the transition is terminal.
func (b *builder) emit(out ptrace.SpanSlice, st *staged) {
	t := &st.t
	start, eventStart := st.start, st.eventStart
	traceID, eventSpanID := b.hash.eventIDs(t.RequestID)
	var callerSpan trace.SpanID
	if sc, ok := parseTraceparent(t.TraceParent); ok {
		traceID = sc.TraceID() // the event joins its caller's trace
		callerSpan = sc.SpanID()
	}

	// Transition span: child of the event's root span.
	sp := out.AppendEmpty()
	sp.SetTraceID(pcommon.TraceID(traceID))
	sp.SetSpanID(pcommon.SpanID(b.hash.transitionSpanID(t.RequestID, t.Seq)))
	sp.SetParentSpanID(pcommon.SpanID(eventSpanID))
	sp.SetFlags(flagSampled | flagHasIsRemote)
	if t.From == event.StateNone {
		sp.SetName(t.To.String())
	} else {
		sp.SetName(t.From.String())
	}
	sp.SetKind(ptrace.SpanKindInternal)
	sp.SetStartTimestamp(pcommon.Timestamp(start))
	sp.SetEndTimestamp(pcommon.Timestamp(t.TimeUnixNano))
	putAttributes(sp.Attributes(), t, event.RoleTransition)
	if t.ErrorCode != "" || failed(t.To) {
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage(statusMessage(t))
	}
	if !t.To.Terminal() {
		return
	}
	if eventStart > 0 && eventStart < t.TimeUnixNano {
		// The exporter's end-to-end duration (the root span is not a row).
		sp.Attributes().PutInt(event.AttrEventStartUnixNano, eventStart)
	}

	// Root span of the event: from its first transition to this one. Its
	// parent is the caller's span, or none.
	if eventStart <= 0 || eventStart > t.TimeUnixNano {
		eventStart = t.TimeUnixNano // first transition unknown (plugin restarted): zero length
	}
	root := out.AppendEmpty()
	root.SetTraceID(pcommon.TraceID(traceID))
	root.SetSpanID(pcommon.SpanID(eventSpanID))
	if callerSpan.IsValid() {
		root.SetParentSpanID(pcommon.SpanID(callerSpan))
		root.SetFlags(flagSampled | flagHasIsRemote | flagParentIsRemote)
	} else {
		root.SetFlags(flagSampled | flagHasIsRemote)
	}
	if t.Function != "" {
		root.SetName(t.Function)
	} else {
		root.SetName("event")
	}
	root.SetKind(ptrace.SpanKindConsumer)
	root.SetStartTimestamp(pcommon.Timestamp(eventStart))
	root.SetEndTimestamp(pcommon.Timestamp(t.TimeUnixNano))
	putAttributes(root.Attributes(), t, event.RoleEvent)
	if failed(t.To) {
		root.Status().SetCode(ptrace.StatusCodeError)
		root.Status().SetMessage(statusMessage(t))
	}
}

func failed(s event.State) bool { return s == event.StateFailed || s == event.StateExpired }

func statusMessage(t *event.Transition) string {
	if t.ErrorMessage != "" {
		return event.Truncate(t.ErrorMessage, event.MaxErrorMessageBytes)
	}
	if t.ErrorCode != "" {
		return t.ErrorCode
	}
	return t.To.String()
}

// putAttributes writes the status attributes of t.
func putAttributes(m pcommon.Map, t *event.Transition, role string) {
	m.EnsureCapacity(14)
	m.PutStr(event.AttrTenant, t.Tenant)
	m.PutStr(event.AttrNamespace, t.Namespace)
	m.PutStr(event.AttrFunction, t.Function)
	m.PutStr(event.AttrQualifier, t.Qualifier)
	m.PutStr(event.AttrRequestID, t.RequestID)
	m.PutStr(event.AttrInvokeType, t.InvokeType)
	m.PutInt(event.AttrSeq, int64(t.Seq))
	m.PutInt(event.AttrAttempt, int64(t.Attempt))
	m.PutStr(event.AttrFromState, t.From.String())
	m.PutStr(event.AttrToState, t.To.String())
	m.PutStr(event.AttrNode, t.Node)
	if t.ErrorCode != "" {
		m.PutStr(event.AttrErrorCode, t.ErrorCode)
	}
	if t.ErrorMessage != "" {
		m.PutStr(event.AttrErrorMsg, event.Truncate(t.ErrorMessage, event.MaxErrorMessageBytes))
	}
	m.PutStr(event.AttrSpanRole, role)
}

// parseTraceparent reads a W3C traceparent ("00-<trace-id>-<parent-id>-<flags>").
// Anything malformed is ignored: the event then starts its own trace.
func parseTraceparent(s string) (trace.SpanContext, bool) {
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return trace.SpanContext{}, false
	}
	ver, ok1 := hexByte(s[0], s[1])
	if !ok1 || ver == 0xff || (ver == 0 && len(s) != 55) {
		return trace.SpanContext{}, false
	}
	var tid trace.TraceID
	var sid trace.SpanID
	if !decodeHex(tid[:], s[3:35]) || !decodeHex(sid[:], s[36:52]) {
		return trace.SpanContext{}, false
	}
	flags, ok := hexByte(s[53], s[54])
	if !ok || !tid.IsValid() || !sid.IsValid() {
		return trace.SpanContext{}, false
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags), Remote: true,
	}), true
}

func decodeHex(dst []byte, s string) bool {
	for i := range dst {
		b, ok := hexByte(s[2*i], s[2*i+1])
		if !ok {
			return false
		}
		dst[i] = b
	}
	return true
}

// hexByte accepts lower-case hex only, as W3C trace context requires.
func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := hexNibble(hi)
	l, ok2 := hexNibble(lo)
	return h<<4 | l, ok1 && ok2
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
