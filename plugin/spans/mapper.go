package spans

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/statustrace/statustrace/plugin"
	"github.com/statustrace/statustrace/plugin/event"
)

// Validate rejects transitions that cannot become a meaningful status span.
// Free text is not rejected: the error message is cut to its limit.
func Validate(t *event.Transition) error {
	switch {
	case t.RequestID == "":
		return errors.New("transition without request_id")
	case !t.To.Valid():
		return fmt.Errorf("transition of %q: invalid to_state %d", t.RequestID, uint8(t.To))
	case t.From != event.StateNone && !t.From.Valid():
		return fmt.Errorf("transition of %q: invalid from_state %d", t.RequestID, uint8(t.From))
	case t.From.Terminal():
		return fmt.Errorf("transition of %q: from terminal state %s", t.RequestID, t.From)
	case t.TimeUnixNano <= 0:
		return fmt.Errorf("transition of %q: no timestamp", t.RequestID)
	}
	for _, f := range [...]struct{ name, v string }{
		{"request_id", t.RequestID}, {"tenant", t.Tenant}, {"namespace", t.Namespace},
		{"function", t.Function}, {"qualifier", t.Qualifier}, {"error_code", t.ErrorCode},
		{"invoke_type", t.InvokeType}, {"node", t.Node}, {"traceparent", t.TraceParent},
	} {
		if len(f.v) > event.MaxKeyBytes {
			return fmt.Errorf("transition of %.64q: %s longer than %d bytes", t.RequestID, f.name, event.MaxKeyBytes)
		}
	}
	return nil
}

// collector is the provider's only span processor: it keeps the spans that
// ended while one batch was built, for that batch's synchronous export.
type collector struct{ spans []sdktrace.ReadOnlySpan }

func (c *collector) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (c *collector) OnEnd(s sdktrace.ReadOnlySpan)                   { c.spans = append(c.spans, s) }
func (c *collector) Shutdown(context.Context) error                  { return nil }
func (c *collector) ForceFlush(context.Context) error                { return nil }

func (c *collector) take() []sdktrace.ReadOnlySpan {
	s := c.spans
	c.spans = make([]sdktrace.ReadOnlySpan, 0, cap(s))
	return s
}

// builder turns transitions into ended spans. It is not safe for concurrent
// use: the Sink calls it under its lock.
type builder struct {
	tracer  trace.Tracer
	ids     *fixedIDs
	collect *collector
	hash    idHasher
	states  *states
	attrs   []attribute.KeyValue
}

// newBuilder makes a builder with its own tracer provider (always-on
// sampling, deterministic IDs). The provider is only a span factory here:
// its processor hands spans back, the Sink exports them.
func newBuilder(res *resource.Resource, maxStates int) (*builder, *sdktrace.TracerProvider) {
	ids := &fixedIDs{}
	col := &collector{}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.AlwaysSample()), // status spans are never sampled away
		sdktrace.WithIDGenerator(ids),
		sdktrace.WithSpanProcessor(col),
		sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{
			AttributeValueLengthLimit:   event.MaxErrorMessageBytes,
			AttributeCountLimit:         64,
			EventCountLimit:             8,
			LinkCountLimit:              8,
			AttributePerEventCountLimit: 8,
			AttributePerLinkCountLimit:  8,
		}),
	)
	return &builder{
		tracer:  tp.Tracer(event.ScopeName),
		ids:     ids,
		collect: col,
		states:  newStates(maxStates),
	}, tp
}

// build emits the spans of one valid transition: always its transition span,
// and the event's root span when the transition is terminal.
func (b *builder) build(ctx context.Context, t *event.Transition) {
	traceID, eventSpanID := b.hash.eventIDs(t.RequestID)
	var caller trace.SpanContext
	if sc, ok := parseTraceparent(t.TraceParent); ok {
		caller = sc
		traceID = sc.TraceID() // the event joins its caller's trace
	}

	st := b.states.get(t.RequestID)
	start := t.TimeUnixNano
	if t.From == event.StateNone {
		st.firstTime = t.TimeUnixNano
	} else if p, ok := st.previous(t.Seq, t.From); ok && p.time <= t.TimeUnixNano {
		start = p.time
	}
	st.remember(seen{seq: t.Seq, state: t.To, time: t.TimeUnixNano})
	eventStart := st.firstTime
	if t.To.Terminal() {
		b.states.retire(t.RequestID)
	}

	end := time.Unix(0, t.TimeUnixNano)
	b.attrs = appendAttributes(b.attrs[:0], t, event.RoleTransition)

	// Transition span: child of the event's root span.
	root := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: eventSpanID, TraceFlags: trace.FlagsSampled})
	b.ids.traceID, b.ids.spanID = traceID, b.hash.transitionSpanID(t.RequestID, t.Seq)
	name := t.From.String()
	if t.From == event.StateNone {
		name = t.To.String()
	}
	_, span := b.tracer.Start(trace.ContextWithSpanContext(ctx, root), name,
		trace.WithTimestamp(time.Unix(0, start)),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(b.attrs...))
	if t.ErrorCode != "" || failed(t.To) {
		span.SetStatus(codes.Error, statusMessage(t))
	}
	span.End(trace.WithTimestamp(end))

	if !t.To.Terminal() {
		return
	}
	// Root span of the event: from its first transition to this one. Its
	// parent is the caller's span, or none.
	if eventStart <= 0 || eventStart > t.TimeUnixNano {
		eventStart = t.TimeUnixNano // first transition unknown (plugin restarted): zero length
	}
	b.attrs[len(b.attrs)-1] = attribute.String(event.AttrSpanRole, event.RoleEvent)
	b.ids.traceID, b.ids.spanID = traceID, eventSpanID
	rootName := t.Function
	if rootName == "" {
		rootName = "event"
	}
	_, span = b.tracer.Start(trace.ContextWithSpanContext(ctx, caller), rootName,
		trace.WithTimestamp(time.Unix(0, eventStart)),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(b.attrs...))
	if failed(t.To) {
		span.SetStatus(codes.Error, statusMessage(t))
	}
	span.End(trace.WithTimestamp(end))
}

func failed(s event.State) bool { return s == event.StateFailed || s == event.StateExpired }

func statusMessage(t *event.Transition) string {
	if t.ErrorMessage != "" {
		return plugin.Truncate(t.ErrorMessage, event.MaxErrorMessageBytes)
	}
	if t.ErrorCode != "" {
		return t.ErrorCode
	}
	return t.To.String()
}

// appendAttributes appends the status attributes of t; the span role is
// always last (build swaps it for the root span).
func appendAttributes(dst []attribute.KeyValue, t *event.Transition, role string) []attribute.KeyValue {
	dst = append(dst,
		attribute.String(event.AttrTenant, t.Tenant),
		attribute.String(event.AttrNamespace, t.Namespace),
		attribute.String(event.AttrFunction, t.Function),
		attribute.String(event.AttrQualifier, t.Qualifier),
		attribute.String(event.AttrRequestID, t.RequestID),
		attribute.String(event.AttrInvokeType, t.InvokeType),
		attribute.Int64(event.AttrSeq, int64(t.Seq)),
		attribute.Int64(event.AttrAttempt, int64(t.Attempt)),
		attribute.String(event.AttrFromState, t.From.String()),
		attribute.String(event.AttrToState, t.To.String()),
		attribute.String(event.AttrNode, t.Node),
	)
	if t.ErrorCode != "" {
		dst = append(dst, attribute.String(event.AttrErrorCode, t.ErrorCode))
	}
	if t.ErrorMessage != "" {
		dst = append(dst, attribute.String(event.AttrErrorMsg, plugin.Truncate(t.ErrorMessage, event.MaxErrorMessageBytes)))
	}
	return append(dst, attribute.String(event.AttrSpanRole, role))
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
