package chaos

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
	"github.com/statustrace/statustrace/plugin/spans"
)

// Poison of issue 12: valid transitions on more than 100 different days, 4
// to 104 days ago, in one OTLP request (ClickHouse once refused such a
// block with code 252 and it was retried forever, stalling everyone).
const poisonFirstDay, poisonLastDay = 4, 104

func poisonSpans() int { return poisonLastDay - poisonFirstDay + 1 }

// statusPayload starts an OTLP request with one scope of status spans.
func statusPayload() (ptrace.Traces, ptrace.ScopeSpans) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "chaos-sender")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(event.ScopeName)
	return td, ss
}

// addTransition appends one status transition span of the plugin's shape
// (plugin/README.md): ends at at, IDs derived from (request ID, seq).
func addTransition(ss ptrace.ScopeSpans, tenant, rid string, seq uint64, attempt int64, to event.State, at time.Time) {
	sp := ss.Spans().AppendEmpty()
	sp.SetName(to.String())
	sp.SetTraceID(pcommon.TraceID(spans.TraceID(rid)))
	sp.SetSpanID(pcommon.SpanID(event.TransitionSpanID(rid, seq)))
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at))
	a := sp.Attributes()
	a.PutStr(event.AttrSpanRole, event.RoleTransition)
	a.PutStr(event.AttrTenant, tenant)
	a.PutStr(event.AttrNamespace, namespace)
	a.PutStr(event.AttrFunction, "direct")
	a.PutStr(event.AttrQualifier, "LATEST")
	a.PutStr(event.AttrRequestID, rid)
	a.PutInt(event.AttrSeq, int64(seq))
	a.PutInt(event.AttrAttempt, attempt)
	a.PutStr(event.AttrToState, to.String())
}

// poisonRequest: one transition per day for 101 days, tenant "poisoner".
func poisonRequest(now time.Time) ptrace.Traces {
	td, ss := statusPayload()
	for d := poisonFirstDay; d <= poisonLastDay; d++ {
		addTransition(ss, "poisoner", fmt.Sprintf("poison-%03d", d), 1, 0, event.StateQueued, now.Add(-time.Duration(d)*24*time.Hour))
	}
	return td
}

// bystanderRequest: a whole valid event of another tenant, now.
func bystanderRequest(rid string, now time.Time) ptrace.Traces {
	td, ss := statusPayload()
	addTransition(ss, bystander, rid, 1, 0, event.StateQueued, now.Add(-2*time.Millisecond))
	addTransition(ss, bystander, rid, 2, 1, event.StateRunning, now.Add(-time.Millisecond))
	addTransition(ss, bystander, rid, 3, 1, event.StateFinished, now)
	return td
}

// sendOTLP sends td to a collector's OTLP/gRPC port as exactly one request.
func sendOTLP(ctx context.Context, addr string, td ptrace.Traces) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	return err
}
