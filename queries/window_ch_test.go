package queries_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/testkit/chtest"
	"github.com/statustrace/statustrace/testkit/querytest"
)

// TestExactWindows checks that statistics count exactly the transitions in
// [from, to) for windows that are not aligned to minutes (the edges come from
// the raw transitions, the whole minutes from the per-minute table), against
// a brute-force count over the rows inserted, and that a window of whole
// minutes still reads only the per-minute table.
func TestExactWindows(t *testing.T) {
	db := chtest.New(t)
	ctx := ctxT(t)
	if err := querytest.Setup(ctx, db.Conn, db.Name); err != nil {
		t.Fatal(err)
	}
	st, err := queries.New(ctx, db.Conn)
	if err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(14, 6))
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	const minutes = 6
	var rows []querytest.Row
	for i := range 400 {
		tenant := querytest.TenantA
		if i%10 == 9 {
			tenant = querytest.TenantB // never counted for A
		}
		k := event.Keys{Tenant: tenant, Namespace: "default", Function: []string{"resize", "thumb"}[i%2], Qualifier: "LATEST", RequestID: fmt.Sprintf("w-%03d", i)}
		start := base.Add(time.Duration(rng.Int64N(int64(minutes * time.Minute))))
		if i%20 == 0 {
			start = base.Add(time.Duration(rng.IntN(minutes)) * time.Minute) // exactly on a minute
		}
		after := func(max time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(max))) }
		var steps []querytest.Step
		switch rng.IntN(3) {
		case 0:
			steps = []querytest.Step{{To: event.StateRunning, After: after(3 * time.Second)}, {To: event.StateFinished, After: after(40 * time.Second)}}
		case 1:
			steps = []querytest.Step{{To: event.StateRunning, After: after(3 * time.Second)},
				{To: event.StateRetrying, After: after(20 * time.Second), Code: "HandlerError", Message: "boom"},
				{To: event.StateRunning, After: after(30 * time.Second), NewTry: true},
				{To: event.StateFailed, After: after(20 * time.Second), Code: "HandlerError", Message: "boom again"}}
		default:
			steps = []querytest.Step{{To: event.StateRunning, After: after(time.Second)}}
		}
		rows = append(rows, querytest.History(k, "async", start, steps...)...)
	}
	// Two batches, then a third of the rows delivered again: duplicates
	// count once, in both parts of a window.
	half := len(rows) / 2
	var dups []querytest.Row
	for i, r := range rows {
		if i%3 == 0 {
			dups = append(dups, r)
		}
	}
	for _, b := range [][]querytest.Row{rows[:half], rows[half:], dups} {
		if err := querytest.Insert(ctx, db.Conn, b); err != nil {
			t.Fatal(err)
		}
	}

	// brute counts, per detailed state and per error code, the distinct
	// transitions of tenant A in [from, to).
	brute := func(from, to time.Time) (map[string]uint64, map[[2]string]uint64) {
		byState, byErr := map[string]uint64{}, map[[2]string]uint64{}
		for _, r := range rows { // rows holds each transition once
			if r.Tenant != querytest.TenantA || r.Time.Before(from) || !r.Time.Before(to) {
				continue
			}
			byState[r.To.String()]++
			if r.ErrorCode != "" {
				byErr[[2]string{r.To.String(), r.ErrorCode}]++
			}
		}
		return byState, byErr
	}

	type win struct {
		name     string
		from, to time.Time
	}
	ms := func(d time.Duration) time.Time { return base.Add(d).Truncate(time.Millisecond) }
	wins := []win{
		{"inside one minute (the issue's 15 s)", ms(2*time.Minute + 30*time.Second), ms(2*time.Minute + 45*time.Second)},
		{"unaligned both ends", ms(37*time.Second + 123*time.Millisecond), ms(4*time.Minute + 11*time.Second + 7*time.Millisecond)},
		{"aligned start", base.Add(time.Minute), ms(3*time.Minute + 59*time.Second + 999*time.Millisecond)},
		{"aligned end", ms(time.Minute + time.Millisecond), base.Add(5 * time.Minute)},
		{"aligned both", base.Add(time.Minute), base.Add(4 * time.Minute)},
		{"one millisecond", ms(3*time.Minute + 20*time.Second), ms(3*time.Minute + 20*time.Second + time.Millisecond)},
		{"across every minute", ms(-time.Second), ms(minutes*time.Minute + 90*time.Second)},
	}
	for i := range 12 {
		from := ms(time.Duration(rng.Int64N(int64(minutes * time.Minute))))
		wins = append(wins, win{fmt.Sprintf("random %d", i), from, from.Add(time.Duration(1 + rng.Int64N(int64(3*time.Minute)))).Truncate(time.Millisecond)})
	}
	// Windows that start or end exactly at a transition: from is
	// inclusive, to exclusive.
	for i, r := range rows[:40] {
		if r.Tenant == querytest.TenantA && r.Time.Equal(r.Time.Truncate(time.Millisecond)) {
			wins = append(wins, win{fmt.Sprintf("edge on a transition %d", i), r.Time, r.Time.Add(90 * time.Second)},
				win{fmt.Sprintf("ends on a transition %d", i), r.Time.Add(-70 * time.Second), r.Time})
		}
	}

	for _, w := range wins {
		if !w.to.After(w.from) {
			continue
		}
		wantState, wantErr := brute(w.from, w.to)
		s, err := st.Stats(ctx, scopeA, queries.StatsQuery{Window: queries.TimeRange{From: w.from, To: w.to}})
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if !maps.Equal(s.ByState, wantState) {
			t.Errorf("%s [%s, %s): by state %v, brute force %v", w.name, w.from.Format(time.RFC3339Nano), w.to.Format(time.RFC3339Nano), s.ByState, wantState)
		}
		gotErr := map[[2]string]uint64{}
		for _, e := range s.Errors {
			gotErr[[2]string{e.State, e.Code}] = e.Count
		}
		if !maps.Equal(gotErr, wantErr) {
			t.Errorf("%s: errors %v, brute force %v", w.name, gotErr, wantErr)
		}
		series := map[string]uint64{}
		for _, p := range s.Series {
			for k, n := range p.ByState {
				series[k] += n
			}
		}
		if !maps.Equal(series, wantState) {
			t.Errorf("%s: the series adds up to %v, want %v", w.name, series, wantState)
		}
		if w.name == "inside one minute (the issue's 15 s)" && len(wantState) == 0 {
			t.Errorf("%s: no transition in the window, the case proves nothing", w.name)
		}
	}

	// A window of whole minutes reads the per-minute table only: with a
	// row limit below the raw transitions' count it still answers, while an
	// unaligned one (whose edges read raw transitions) hits the limit.
	var statsRows, rawRows uint64
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM "+schema.Stats).Scan(&statsRows); err != nil {
		t.Fatal(err)
	}
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM "+schema.Transitions).Scan(&rawRows); err != nil {
		t.Fatal(err)
	}
	limit := statsRows + 100 // and the settings row
	if limit >= rawRows {
		t.Fatalf("fixture too small: %d stats rows, %d transitions", statsRows, rawRows)
	}
	lctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_rows_to_read": limit}))
	aligned := queries.TimeRange{From: base, To: base.Add(minutes * time.Minute)}
	if _, err := st.Stats(lctx, scopeA, queries.StatsQuery{Window: aligned}); err != nil {
		t.Errorf("aligned window under a limit of %d rows (%d raw transitions): %v", limit, rawRows, err)
	}
	unaligned := queries.TimeRange{From: base.Add(time.Second), To: aligned.To}
	if _, err := st.Stats(lctx, scopeA, queries.StatsQuery{Window: unaligned}); err == nil {
		t.Errorf("unaligned window read fewer than %d rows: the limit does not bite, the aligned case proves nothing", limit)
	}
}
