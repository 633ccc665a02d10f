package dashboards_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/statustrace/statustrace/dashboards/internal/build"
	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
)

var (
	acme     = byTenant("acme")
	checkout = func(e *seedEvent) bool { return e.function == "checkout" }
	terminal = []event.State{event.StateFinished, event.StateFailed, event.StateAborted, event.StateExpired}
	failed   = []event.State{event.StateFailed, event.StateExpired}
)

// expectations, per "dashboard uid/panel title". Scenarios without a check
// only have to run and return the columns.
func expectations() map[string]expectation {
	return map[string]expectation{
		// overview
		build.OverviewUID + "/" + build.BacklogPanelTitle: {
			cols: []string{"namespace", "function", "waiting", "oldest_age_s"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				if sc != "acme" {
					return
				}
				want := map[string]int{}
				for _, e := range s.visible(and(acme, isCurrent(event.WaitingStates()...))) {
					want[e.namespace+"/"+e.function]++
				}
				got := map[string]int{}
				for _, row := range r.rows {
					got[row[0].(string)+"/"+row[1].(string)] = int(num(row[2]))
					if num(row[3]) < 0 {
						t.Errorf("negative age: %v", row)
					}
				}
				if len(want) == 0 {
					t.Fatal("the seed has no waiting event: the check proves nothing")
				}
				if !maps.Equal(got, want) {
					t.Errorf("backlog %v, want %v", got, want)
				}
			},
		},
		build.OverviewUID + "/In flight now": {
			cols: []string{"queued", "running", "retrying", "terminating"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				if sc != "acme" && sc != "hostile" {
					return
				}
				row := oneRow(t, r)
				for i, st := range []event.State{event.StateQueued, event.StateRunning, event.StateRetrying, event.StateTerminating} {
					want := len(s.visible(and(acme, isCurrent(st))))
					if sc == "hostile" {
						want = 0
					}
					wantNum(t, r.cols[i], row[i], float64(want))
				}
			},
		},
		build.OverviewUID + "/Accepted and ended in range": {
			cols: []string{"accepted", "finished", "failed", "aborted", "expired"}, // event.TerminalStates order
			check: func(t *testing.T, sc string, s seeded, r result) {
				keep := map[string]func(*seedEvent) bool{"acme": acme, "all": func(*seedEvent) bool { return true }}[sc]
				if keep == nil {
					return
				}
				row := oneRow(t, r)
				evs := s.visible(keep)
				for i, st := range []event.State{event.StateQueued, event.StateFinished, event.StateFailed, event.StateAborted, event.StateExpired} {
					wantNum(t, r.cols[i], row[i], float64(entered(evs, st)))
				}
			},
		},
		build.OverviewUID + "/Failure rate in range": {
			cols: []string{"failure_rate"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				if sc != "acme" && sc != "filtered" {
					return
				}
				keep := acme
				if sc == "filtered" {
					keep = and(acme, checkout)
				}
				evs := s.visible(keep)
				wantNum(t, "failure_rate", oneRow(t, r)[0], float64(entered(evs, failed...))/float64(entered(evs, terminal...)))
			},
		},
		build.OverviewUID + "/Transitions into each state": {
			cols: []string{"time", "to_state", "transitions"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				got := map[string]float64{}
				for _, row := range r.rows {
					got[text(row[1])] += num(row[2])
				}
				switch sc {
				case "acme", "filtered":
					keep := acme
					states := build.States
					if sc == "filtered" {
						keep, states = and(acme, checkout), []string{"FAILED", "EXPIRED"}
					}
					evs := s.visible(keep)
					for _, name := range build.States {
						st, _ := event.ParseState(name)
						want := float64(entered(evs, st))
						if !slices.Contains(states, name) {
							want = 0
						}
						if got[name] != want {
							t.Errorf("transitions into %s = %v, want %v (re-deliveries must count once)", name, got[name], want)
						}
					}
				case "hostile":
					if len(r.rows) != 0 {
						t.Errorf("hostile filter matched %d rows", len(r.rows))
					}
				}
			},
		},
		build.OverviewUID + "/Failure rate": {
			cols: []string{"time", "failure_rate"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				if sc == "filtered" {
					// checkout only ever fails
					if len(r.rows) == 0 {
						t.Fatal("no rows")
					}
					n := 0
					for _, v := range r.col("failure_rate") {
						if v.(*float64) != nil { // NULL: nothing ended in the interval
							wantNum(t, "failure_rate", v, 1)
							n++
						}
					}
					if n != 4 {
						t.Errorf("%d intervals with a failure rate, want 4 (one per ended checkout event)", n)
					}
				}
			},
		},
		build.OverviewUID + "/Queue wait": {
			cols: []string{"time", "p50", "p90", "p99"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				if sc != "acme" {
					return
				}
				// seeded waits are 1 s (failures, retries, aborts) and 2 s,
				// read from digests within schema.DigestRelError
				e := schema.DigestRelError
				checkRange(t, r, 1*(1-e), 2*(1+e))
			},
		},
		build.OverviewUID + "/Run duration": {
			cols: []string{"time", "p50", "p90", "p99"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				if sc != "acme" {
					return
				}
				// seeded attempts: 3 s (ok), 2 and 3 s (failed), 1 and 2 s
				// (retried), 9 s (aborted: RUNNING to TERMINATING), from
				// digests within schema.DigestRelError
				e := schema.DigestRelError
				checkRange(t, r, 1*(1-e), 9*(1+e))
			},
		},
		build.OverviewUID + "/" + build.EndToEndPanelTitle: {
			cols: []string{"time", "p50", "p90", "p99"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				if sc != "acme" {
					return
				}
				// seeded events end 5 s (ok), 6 s (retried), 12 s (aborted),
				// 16 s (failed) and 60 s (expired) after acceptance
				e := schema.DigestRelError
				checkRange(t, r, 5*(1-e), 60*(1+e))
			},
		},
		build.OverviewUID + "/Top failing functions": {
			cols: []string{"namespace", "function", "failed", "ended", "failure_rate", "retries", "top_error_code"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				switch sc {
				case "acme", "filtered":
					evs := s.visible(and(acme, checkout))
					row := oneRow(t, r)
					if text(row[0]) != "shop" || text(row[1]) != "checkout" || text(row[6]) != "FunctionTimeout" {
						t.Errorf("row %v: want shop/checkout with top error FunctionTimeout", row)
					}
					wantNum(t, "failed", row[2], float64(entered(evs, failed...)))
					wantNum(t, "ended", row[3], float64(entered(evs, terminal...)))
					wantNum(t, "failure_rate", row[4], 1)
					wantNum(t, "retries", row[5], float64(entered(evs, event.StateRetrying)))
				case "all":
					if got := texts(r.col("function")); !slices.Equal(got, []string{"checkout", "resize"}) {
						t.Errorf("functions %v, want checkout (acme) then resize (globex)", got)
					}
				}
			},
		},
		build.OverviewUID + "/Errors by code": {
			cols: []string{"error_code", "failed", "retried", "other", "functions"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				if sc != "acme" {
					return
				}
				want := map[string][2]float64{}
				for _, e := range s.visible(acme) {
					for _, st := range e.steps {
						if st.code == "" {
							continue
						}
						w := want[st.code]
						if slices.Contains(failed, st.to) {
							w[0]++
						} else if st.to == event.StateRetrying {
							w[1]++
						}
						want[st.code] = w
					}
				}
				if len(r.rows) != len(want) {
					t.Errorf("%d error codes, want %d (%v): another tenant's codes must not show", len(r.rows), len(want), want)
				}
				for _, row := range r.rows {
					w, ok := want[text(row[0])]
					if !ok {
						t.Errorf("unexpected error code %q", text(row[0]))
						continue
					}
					wantNum(t, text(row[0])+" failed", row[1], w[0])
					wantNum(t, text(row[0])+" retried", row[2], w[1])
				}
			},
		},

		// explorer
		build.ExplorerUID + "/Matching events": {
			cols: []string{"events", "running", "finished", "failed", "aborted"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				keep := map[string]func(*seedEvent) bool{
					"acme":     acme,
					"filtered": and(acme, checkout, isCurrent(failed...)),
					"search":   func(e *seedEvent) bool { return e.id == hostileID },
					"hostile":  func(*seedEvent) bool { return false },
				}[sc]
				if keep == nil {
					return
				}
				evs := s.visible(keep)
				row := oneRow(t, r)
				wantNum(t, "events", row[0], float64(len(evs)))
				for i, st := range []string{"RUNNING", "FINISHED", "FAILED", "ABORTED"} {
					n := 0
					for _, e := range evs {
						if publicStatus(e) == st {
							n++
						}
					}
					wantNum(t, r.cols[i+1], row[i+1], float64(n))
				}
			},
		},
		build.ExplorerUID + "/Events": {
			cols: []string{"request_id", "status", "state", "namespace", "function", "qualifier", "tenant", "invoke_type",
				"attempts", "first_seen", "queued_at", "ended_at", "duration_s", "error_code", "error_message", "node",
				"trace_id", "link_from", "link_to"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				ids := texts(r.col("request_id"))
				switch sc {
				case "acme":
					var want []string
					evs := s.visible(acme)
					slices.SortFunc(evs, func(a, b *seedEvent) int {
						if c := b.queued.Compare(a.queued); c != 0 {
							return c
						}
						return strings.Compare(a.id, b.id)
					})
					for _, e := range evs {
						want = append(want, e.id)
					}
					if !slices.Equal(ids, want) {
						t.Errorf("request IDs %q, want %q (newest first, inside retention)", ids, want)
					}
					for i, id := range ids {
						e := find(s.events, id)
						row := r.rows[i]
						if text(row[2]) != current(e).String() || text(row[1]) != publicStatus(e) {
							t.Errorf("%s: state %v status %v, want %v %v", id, row[2], row[1], current(e), publicStatus(e))
						}
						if text(row[16]) != traceHex(id) {
							t.Errorf("%s: trace_id %v, want %s", id, row[16], traceHex(id))
						}
					}
					i := slices.Index(ids, "r-fail-1")
					row := r.rows[i]
					if num(row[8]) != 2 || text(row[13]) != "FunctionTimeout" || text(row[14]) != "timed out after 3s" {
						t.Errorf("r-fail-1: attempts %v error %v %q, want 2 FunctionTimeout", row[8], row[13], text(row[14]))
					}
				case "filtered":
					want := []string{"r-fail-3", "r-exp-1", "r-fail-2", "r-fail-1"}
					if !slices.Equal(ids, want) {
						t.Errorf("request IDs %q, want %q", ids, want)
					}
				case "all":
					if want := len(s.visible(func(*seedEvent) bool { return true })); len(ids) != want || slices.Contains(ids, "r-old-1") {
						t.Errorf("%d events over 7 days, want %d: none past the retention (r-old-1)", len(ids), want)
					}
				case "search":
					if !slices.Equal(ids, []string{hostileID}) {
						t.Errorf("search by ID found %q, want exactly the one event", ids)
					}
				case "hostile":
					if len(ids) != 0 {
						t.Errorf("hostile filter matched %q", ids)
					}
				}
			},
		},

		// event
		build.EventUID + "/Event": {
			cols: []string{"field", "value"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				got := map[string]string{}
				for _, row := range r.rows {
					got[text(row[0])] = text(row[1])
				}
				switch sc {
				case "acme":
					want := map[string]string{"request_id": "r-fail-1", "status": "FAILED", "state": "FAILED", "tenant": "acme",
						"function": "checkout", "attempts": "2", "last_error_code": "FunctionTimeout",
						"last_error_message": "timed out after 3s", "trace_id": traceHex("r-fail-1"), "last_node": "node-1"}
					for k, v := range want {
						if got[k] != v {
							t.Errorf("%s = %q, want %q", k, got[k], v)
						}
					}
					if len(r.rows) != 16 {
						t.Errorf("%d fields, want 16", len(r.rows))
					}
				case "all":
					if got["request_id"] != hostileID || got["state"] != "FINISHED" {
						t.Errorf("lookup of the hostile ID with tenant All: %q", got)
					}
				case "other tenant", "hostile", "empty":
					if len(r.rows) != 0 {
						t.Errorf("%d rows: another tenant's or no event must show nothing", len(r.rows))
					}
				}
			},
		},
		build.EventUID + "/Transition timeline": {
			cols: []string{"time", "state"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				want := map[string]string{"acme": "r-fail-1", "filtered": "r-retry-1"}[sc]
				if want == "" {
					if sc != "all" && len(r.rows) != 0 {
						t.Errorf("%d rows, want none", len(r.rows))
					}
					return
				}
				var states []string
				for _, st := range find(s.events, want).steps {
					states = append(states, st.to.String())
				}
				if got := texts(r.col("state")); !slices.Equal(got, states) {
					t.Errorf("states %q, want %q (each transition once, in order)", got, states)
				}
			},
		},
		build.EventUID + "/Trace": {
			cols: []string{"trace_id", "trace_from", "trace_to"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				if sc == "acme" && text(oneRow(t, r)[0]) != traceHex("r-fail-1") {
					t.Errorf("trace_id %v, want %s", r.rows[0][0], traceHex("r-fail-1"))
				}
			},
		},
		build.EventUID + "/Transitions": {
			cols: []string{"seq", "time", "from_state", "to_state", "in_from_state_s", "attempt", "error_code",
				"error_message", "node", "invoke_type", "span"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				if sc != "acme" {
					return
				}
				e := find(s.events, "r-fail-1")
				if len(r.rows) != len(e.steps) {
					t.Fatalf("%d transitions, want %d (re-delivered ones once)", len(r.rows), len(e.steps))
				}
				for i, st := range e.steps {
					row := r.rows[i]
					wantNum(t, "seq", row[0], float64(i+1))
					if text(row[3]) != st.to.String() || text(row[6]) != st.code {
						t.Errorf("row %d: %v %v, want %v %q", i, row[3], row[6], st.to, st.code)
					}
					prev := st.after
					if i > 0 {
						prev = st.after - e.steps[i-1].after
					}
					wantNum(t, "in_from_state_s", row[4], prev.Seconds())
				}
			},
		},
		build.EventUID + "/Attempts": {
			cols: []string{"attempt", "started_at", "ended_at", "outcome", "run_s", "error_code", "error_message", "node"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				if sc != "acme" {
					return
				}
				if len(r.rows) != 2 {
					t.Fatalf("%d attempts, want 2", len(r.rows))
				}
				if text(r.rows[0][3]) != "RETRYING" || text(r.rows[1][3]) != "FAILED" || text(r.rows[0][5]) != "FunctionTimeout" {
					t.Errorf("attempts %v: want RETRYING then FAILED with FunctionTimeout", r.rows)
				}
				wantNum(t, "attempt 1 run_s", r.rows[0][4], 2)
				wantNum(t, "attempt 2 run_s", r.rows[1][4], 3)
			},
		},
		build.EventUID + "/Errors": {
			cols: []string{"time", "seq", "attempt", "from_state", "to_state", "error_code", "error_message", "node"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				if sc == "acme" && !slices.Equal(texts(r.col("to_state")), []string{"RETRYING", "FAILED"}) {
					t.Errorf("errors %v: want the RETRYING and FAILED transitions", r.rows)
				}
			},
		},
		build.EventUID + "/Trace view": {
			cols: []string{"traceID", "spanID", "parentSpanID", "serviceName", "operationName", "startTime", "duration",
				"tags", "serviceTags", "statusCode", "statusMessage", "kind"},
			check: func(t *testing.T, sc string, s seeded, r result) {
				switch sc {
				case "acme":
					if n := spanCount(s, "r-fail-1"); len(r.rows) != n {
						t.Fatalf("%d spans, want %d", len(r.rows), n)
					}
					for _, v := range r.col("traceID") {
						if text(v) != traceHex("r-fail-1") {
							t.Errorf("span of trace %v, want %s", v, traceHex("r-fail-1"))
						}
					}
					if !slices.Contains(texts(r.col("operationName")), "checkout") {
						t.Errorf("operations %v: want the event's root span (checkout)", r.col("operationName"))
					}
				case "other tenant", "hostile", "empty":
					if len(r.rows) != 0 {
						t.Errorf("%d spans, want none", len(r.rows))
					}
				}
			},
		},
	}
}

// checkRange: every percentile of a latency series lies in [lo, hi] seconds.
func checkRange(t *testing.T, r result, lo, hi float64) {
	t.Helper()
	if len(r.rows) == 0 {
		t.Fatal("no rows")
	}
	for _, row := range r.rows {
		for i, v := range row[1:] {
			if f := num(v); f < lo-1e-9 || f > hi+1e-9 {
				t.Errorf("%s = %v s, want within [%v, %v]", r.cols[i+1], f, lo, hi)
			}
		}
	}
}
