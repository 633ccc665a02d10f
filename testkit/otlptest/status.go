package otlptest

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/statustrace/statustrace/event"
)

// StatusPayload starts an OTLP request holding one scope of statustrace
// status spans, as the plugin sends them, from the named service.
func StatusPayload(service string) (ptrace.Traces, ptrace.ScopeSpans) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(event.ScopeName)
	return td, ss
}

// Transition is one status transition as a test writes it by hand, for
// requests the plugin would never build (poison, other tenants' events
// sent straight to a collector).
type Transition struct {
	Tenant, Namespace, Function, RequestID string
	TraceID                                [16]byte // the plugin's is spans.TraceID(RequestID); must not be zero
	Seq                                    uint64
	Attempt                                int64
	To                                     event.State
	At                                     time.Time // the span starts and ends here
}

// AddTransition appends tr as a span of the plugin's shape
// (plugin/README.md): the span ID derived from the request ID and seq as
// the plugin derives it, so a retry of the same span is the same row. (The
// trace ID is the caller's: this package cannot import plugin/spans, whose
// tests use it.)
func AddTransition(ss ptrace.ScopeSpans, tr Transition) {
	sp := ss.Spans().AppendEmpty()
	sp.SetName(tr.To.String())
	sp.SetTraceID(pcommon.TraceID(tr.TraceID))
	sp.SetSpanID(pcommon.SpanID(event.TransitionSpanID(tr.RequestID, tr.Seq)))
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(tr.At))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(tr.At))
	a := sp.Attributes()
	a.PutStr(event.AttrSpanRole, event.RoleTransition)
	a.PutStr(event.AttrTenant, tr.Tenant)
	a.PutStr(event.AttrNamespace, tr.Namespace)
	a.PutStr(event.AttrFunction, tr.Function)
	a.PutStr(event.AttrQualifier, "LATEST")
	a.PutStr(event.AttrRequestID, tr.RequestID)
	a.PutInt(event.AttrSeq, int64(tr.Seq))
	a.PutInt(event.AttrAttempt, tr.Attempt)
	a.PutStr(event.AttrToState, tr.To.String())
}

// The poison request of issue 12: valid transitions on more than 100
// different days, PoisonFirstDay to PoisonLastDay days ago, in one request.
// ClickHouse once refused such a block (too many partitions, code 252) and
// it was retried forever in front of every good batch.
const PoisonFirstDay, PoisonLastDay = 4, 104

// PoisonSpans is how many spans AddPoison appends.
const PoisonSpans = PoisonLastDay - PoisonFirstDay + 1

// AddPoison appends the poison: one QUEUED transition of tenant per day,
// request IDs prefix-NNN, all in trace traceID.
func AddPoison(ss ptrace.ScopeSpans, tenant, prefix string, traceID [16]byte, now time.Time) {
	for d := PoisonFirstDay; d <= PoisonLastDay; d++ {
		AddTransition(ss, Transition{
			Tenant: tenant, Namespace: "poison", Function: "poison", RequestID: fmt.Sprintf("%s-%03d", prefix, d), TraceID: traceID,
			Seq: 1, To: event.StateQueued, At: now.Add(-time.Duration(d) * 24 * time.Hour),
		})
	}
}

// Send sends td to an OTLP/gRPC address as exactly one request.
func Send(ctx context.Context, addr string, td ptrace.Traces) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("otlp client for %s: %w", addr, err)
	}
	defer conn.Close()
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
		return fmt.Errorf("export to %s: %w", addr, err)
	}
	return nil
}
