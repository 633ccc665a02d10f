package statustraceexporter

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/plugin/spans"
)

// Test data: random event histories, their spans, and what the views must
// show for them, computed by brute force in Go.

type transition struct {
	event.Transition
	TraceID       [16]byte
	SpanID        [8]byte
	StartUnixNano int64 // span start: when the event entered From (the previous transition)
}

// genEvents makes n events with random histories between base and
// base+span. Tenants, functions and qualifiers repeat so that statistics
// aggregate; some events are still running.
func genEvents(rng *rand.Rand, n int, base time.Time, spread time.Duration) []transition {
	var out []transition
	for i := range n {
		keys := event.Keys{
			Tenant:    fmt.Sprintf("tenant-%d", rng.IntN(3)),
			Namespace: "ns",
			Function:  fmt.Sprintf("fn-%d", rng.IntN(4)),
			Qualifier: []string{"LATEST", "v1"}[rng.IntN(2)],
			RequestID: fmt.Sprintf("req-%05d-%x", i, rng.Uint32()),
		}
		var trace [16]byte
		binary.BigEndian.PutUint64(trace[:8], rng.Uint64())
		binary.BigEndian.PutUint64(trace[8:], rng.Uint64()|1)
		at := base.Add(time.Duration(rng.Int64N(int64(spread))))
		seq := uint64(0)
		attempt := uint32(0)
		from := event.StateNone
		add := func(to event.State, code, msg string) {
			seq++
			prev := at
			at = at.Add(time.Duration(rng.Int64N(int64(90 * time.Second))))
			if from == event.StateNone {
				prev = at // the first transition's span has zero length
			}
			t := transition{Transition: event.Transition{
				Keys: keys, Seq: seq, Attempt: attempt, From: from, To: to,
				TimeUnixNano: at.UnixNano(), ErrorCode: code, ErrorMessage: msg,
				InvokeType: "async", Node: fmt.Sprintf("node-%d", rng.IntN(3)),
			}, TraceID: trace, StartUnixNano: prev.UnixNano()}
			// The plugin's span ID (derived from request_id and seq); the
			// trace ID stays random, as for an event that joined its
			// caller's trace.
			t.SpanID = spans.TransitionSpanID(keys.RequestID, seq)
			out = append(out, t)
			from = to
		}
		add(event.StateQueued, "", "")
		retries := rng.IntN(3)
		for r := 0; ; r++ {
			attempt++
			add(event.StateRunning, "", "")
			if r < retries {
				add(event.StateRetrying, "HandlerError", fmt.Sprintf("attempt %d failed", attempt))
				continue
			}
			break
		}
		switch rng.IntN(6) {
		case 0: // still running
		case 1:
			add(event.StateFailed, "HandlerError", "gave up")
		case 2:
			add(event.StateTerminating, "", "")
			add(event.StateAborted, "", "")
		case 3:
			add(event.StateExpired, "MaxAgeExceeded", "")
		default:
			add(event.StateFinished, "", "")
		}
	}
	return out
}

// tracesOf builds one OTLP payload holding the transition spans of ts, plus
// a root "event" span for terminal ones (which the exporter must ignore).
func tracesOf(ts []transition) ptrace.Traces { return buildTraces(ts, true) }

// buildTraces puts the transition spans of ts in one payload, and with
// roots the root span of each terminal event too.
func buildTraces(ts []transition, roots bool) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "statustrace")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(event.ScopeName)
	for _, t := range ts {
		putSpan(ss, t, event.RoleTransition)
		if roots && t.To.Terminal() {
			putSpan(ss, t, event.RoleEvent)
		}
	}
	return td
}

func putSpan(ss ptrace.ScopeSpans, t transition, role string) {
	sp := ss.Spans().AppendEmpty()
	sp.SetName(t.To.String())
	sp.SetTraceID(t.TraceID)
	sp.SetSpanID(t.SpanID)
	sp.SetStartTimestamp(pcommon.Timestamp(t.StartUnixNano))
	sp.SetEndTimestamp(pcommon.Timestamp(t.TimeUnixNano))
	a := sp.Attributes()
	a.PutStr(event.AttrTenant, t.Tenant)
	a.PutStr(event.AttrNamespace, t.Namespace)
	a.PutStr(event.AttrFunction, t.Function)
	a.PutStr(event.AttrQualifier, t.Qualifier)
	a.PutStr(event.AttrRequestID, t.RequestID)
	a.PutStr(event.AttrInvokeType, t.InvokeType)
	a.PutInt(event.AttrSeq, int64(t.Seq))
	a.PutInt(event.AttrAttempt, int64(t.Attempt))
	a.PutStr(event.AttrFromState, t.From.String())
	a.PutStr(event.AttrToState, t.To.String())
	a.PutStr(event.AttrNode, t.Node)
	if t.ErrorCode != "" {
		a.PutStr(event.AttrErrorCode, t.ErrorCode)
	}
	if t.ErrorMessage != "" {
		a.PutStr(event.AttrErrorMsg, t.ErrorMessage)
	}
	a.PutStr(event.AttrSpanRole, role)
}

// deliveries shuffles ts, re-sends a random fraction (as retries do) and
// cuts the result into batches of random size.
func deliveries(rng *rand.Rand, ts []transition, dupFraction float64) [][]transition {
	all := slices.Clone(ts)
	for _, t := range ts {
		if rng.Float64() < dupFraction {
			all = append(all, t)
		}
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	var out [][]transition
	for len(all) > 0 {
		n := min(len(all), 1+rng.IntN(200))
		out = append(out, all[:n])
		all = all[n:]
	}
	return out
}

// eventRow is the current status of one event as the events view must show it.
type eventRow struct {
	RequestID string `ch:"request_id"`
	State     string `ch:"state"`
	LastSeq   uint64 `ch:"last_seq"`
	Attempts  uint32 `ch:"attempts"`
	FirstTime int64  `ch:"first_time"`
	LastTime  int64  `ch:"last_time"`
	StartTime int64  `ch:"start_time"` // 0 = NULL
	EndTime   int64  `ch:"end_time"`   // 0 = NULL
	ErrorCode string `ch:"error_code"`
	ErrorMsg  string `ch:"error_msg"`
	LastNode  string `ch:"last_node"`
	TraceID   string `ch:"trace_id"` // hex
}

func rank(s event.State) int { return int(s) }

// toMillis truncates Unix nanoseconds to whole milliseconds, as
// toStartOfMillisecond does (times here are after 1970).
func toMillis(ns int64) int64 { return ns - ns%int64(time.Millisecond) }

// expectEvents computes every event's row from the transitions by brute
// force: highest (seq, state rank) wins, as the schema documents.
func expectEvents(ts []transition) []eventRow {
	by := map[string][]transition{}
	for _, t := range ts {
		by[t.RequestID] = append(by[t.RequestID], t)
	}
	var out []eventRow
	for req, list := range by {
		r := eventRow{RequestID: req, FirstTime: 1<<63 - 1}
		var best, bestErr, bestNode *transition
		for i := range list {
			t := &list[i]
			if best == nil || cmp.Or(cmp.Compare(t.Seq, best.Seq), cmp.Compare(rank(t.To), rank(best.To))) > 0 {
				best = t
			}
			if t.ErrorCode != "" || t.ErrorMessage != "" {
				if bestErr == nil || t.Seq > bestErr.Seq {
					bestErr = t
				}
			}
			if bestNode == nil || t.Seq > bestNode.Seq {
				bestNode = t
			}
			r.LastSeq = max(r.LastSeq, t.Seq)
			r.Attempts = max(r.Attempts, t.Attempt)
			r.FirstTime = min(r.FirstTime, t.TimeUnixNano)
			r.LastTime = max(r.LastTime, t.TimeUnixNano)
			if t.To == event.StateQueued && (r.StartTime == 0 || t.TimeUnixNano < r.StartTime) {
				r.StartTime = t.TimeUnixNano
			}
			if t.To.Terminal() {
				r.EndTime = max(r.EndTime, t.TimeUnixNano)
			}
		}
		// events keeps its times in whole milliseconds (migration 2).
		r.FirstTime, r.LastTime = toMillis(r.FirstTime), toMillis(r.LastTime)
		r.StartTime, r.EndTime = toMillis(r.StartTime), toMillis(r.EndTime)
		r.State = best.To.String()
		if bestErr != nil {
			r.ErrorCode, r.ErrorMsg = bestErr.ErrorCode, bestErr.ErrorMessage
		}
		r.LastNode = bestNode.Node
		r.TraceID = fmt.Sprintf("%X", best.TraceID) // one trace per event
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b eventRow) int { return cmp.Compare(a.RequestID, b.RequestID) })
	return out
}

// statRow is one per-minute statistics row.
type statRow struct {
	Tenant      string `ch:"tenant"`
	Function    string `ch:"function"`
	Qualifier   string `ch:"qualifier"`
	Bucket      int64  `ch:"bucket"` // unix seconds
	ToState     string `ch:"to_state"`
	ErrorCode   string `ch:"error_code"`
	Transitions uint64 `ch:"transitions"`
}

func expectStats(ts []transition) []statRow {
	type key struct {
		tenant, fn, q string
		bucket        int64
		to, code      string
	}
	trans := map[key]map[string]bool{}
	for _, t := range ts {
		k := key{t.Tenant, t.Function, t.Qualifier, t.TimeUnixNano / 1e9 / 60 * 60, t.To.String(), t.ErrorCode}
		if trans[k] == nil {
			trans[k] = map[string]bool{}
		}
		trans[k][fmt.Sprintf("%s/%d", t.RequestID, t.Seq)] = true
	}
	var out []statRow
	for k := range trans {
		out = append(out, statRow{k.tenant, k.fn, k.q, k.bucket, k.to, k.code, uint64(len(trans[k]))})
	}
	slices.SortFunc(out, func(a, b statRow) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Function, b.Function), cmp.Compare(a.Qualifier, b.Qualifier),
			cmp.Compare(a.Bucket, b.Bucket), cmp.Compare(a.ToState, b.ToState), cmp.Compare(a.ErrorCode, b.ErrorCode))
	})
	return out
}
