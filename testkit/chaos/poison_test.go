package chaos

import (
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/plugin/spans"
	"github.com/statustrace/statustrace/testkit/otlptest"
)

// poisonRequest: the poison of issue 12 (otlptest.AddPoison), tenant
// "poisoner".
func poisonRequest(now time.Time) ptrace.Traces {
	td, ss := otlptest.StatusPayload("chaos-sender")
	otlptest.AddPoison(ss, "poisoner", "poison", spans.TraceID("poison"), now)
	return td
}

// bystanderRequest: a whole valid event of another tenant, now.
func bystanderRequest(rid string, now time.Time) ptrace.Traces {
	td, ss := otlptest.StatusPayload("chaos-sender")
	tr := otlptest.Transition{Tenant: bystander, Namespace: namespace, Function: "direct", RequestID: rid, TraceID: spans.TraceID(rid)}
	for i, to := range []event.State{event.StateQueued, event.StateRunning, event.StateFinished} {
		tr.Seq, tr.To, tr.At = uint64(i+1), to, now.Add(time.Duration(i-2)*time.Millisecond)
		if to != event.StateQueued {
			tr.Attempt = 1
		}
		otlptest.AddTransition(ss, tr)
	}
	return td
}
