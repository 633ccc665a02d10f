package queries_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/testkit/chtest"
	"github.com/statustrace/statustrace/testkit/querytest"
)

// nearestRank is the brute-force percentile: the smallest value with at
// least p of all values at or below it.
func nearestRank(sorted []time.Duration, p float64) time.Duration {
	rank := max(int(math.Ceil(p*float64(len(sorted)))), 1)
	return sorted[rank-1]
}

// Percentiles from the digests agree with a brute-force computation over
// the same durations within schema.DigestRelError (just under 1%), counts
// are exact, and transitions delivered twice (in later batches) count once.
func TestDurationDigestsMatchBruteForce(t *testing.T) {
	db := chtest.New(t)
	ctx := ctxT(t)
	if err := querytest.Setup(ctx, db.Conn, db.Name); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(15, 4))
	// Log-uniform between 1ms and 10min: every bin range is exercised.
	dur := func() time.Duration {
		return time.Duration(math.Exp(math.Log(1e6) + rng.Float64()*(math.Log(6e11)-math.Log(1e6))))
	}
	now := time.Now().UTC()
	R, Y := event.StateRunning, event.StateRetrying
	want := map[string][]time.Duration{}
	var rows, dups []querytest.Row
	const events = 2000
	for i := range events {
		k := event.Keys{Tenant: querytest.TenantA, Namespace: "default", Function: fmt.Sprintf("fn-%d", i%3), Qualifier: "LATEST", RequestID: fmt.Sprintf("d-%d", i)}
		start := now.Add(-50*time.Minute + time.Duration(i)*time.Second)
		qw, run1 := dur(), dur()
		steps := []querytest.Step{{To: R, After: qw}}
		want[schema.DurationQueueWait] = append(want[schema.DurationQueueWait], qw)
		want[schema.DurationRun] = append(want[schema.DurationRun], run1)
		total := qw + run1
		if i%4 == 0 {
			delay, run2 := dur(), dur()
			steps = append(steps, querytest.Step{To: Y, After: run1, Code: "E"}, querytest.Step{To: R, After: delay, NewTry: true},
				querytest.Step{To: event.StateFinished, After: run2})
			want[schema.DurationRetryDelay] = append(want[schema.DurationRetryDelay], delay)
			want[schema.DurationRun] = append(want[schema.DurationRun], run2)
			total += delay + run2
		} else {
			steps = append(steps, querytest.Step{To: event.StateFinished, After: run1})
		}
		want[schema.DurationEndToEnd] = append(want[schema.DurationEndToEnd], total)
		h := querytest.History(k, "async", start, steps...)
		rows = append(rows, h...)
		if i%5 == 0 {
			dups = append(dups, h...)
		}
	}
	for lo := 0; lo < len(rows); lo += 1000 {
		if err := querytest.Insert(ctx, db.Conn, rows[lo:min(lo+1000, len(rows))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := querytest.Insert(ctx, db.Conn, dups); err != nil {
		t.Fatal(err)
	}
	st, err := queries.New(ctx, db.Conn)
	if err != nil {
		t.Fatal(err)
	}
	// Durations end up to ~40 minutes after the last start: a window to the future.
	w := queries.TimeRange{From: now.Add(-time.Hour), To: now.Add(2 * time.Hour)}
	d, err := st.Durations(ctx, scopeA, queries.StatsQuery{Window: w})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]struct {
		n uint64
		p queries.Percentiles
	}{
		schema.DurationQueueWait:  {d.QueueWaits, d.QueueWait},
		schema.DurationRun:        {d.Runs, d.Run},
		schema.DurationRetryDelay: {d.RetryDelays, d.RetryDelay},
		schema.DurationEndToEnd:   {d.EndToEnds, d.EndToEnd},
	}
	worst := 0.0
	for _, kind := range schema.DurationKinds {
		all := want[kind]
		slices.Sort(all)
		g := got[kind]
		if g.n != uint64(len(all)) {
			t.Errorf("%s: %d durations, want %d (duplicates must count once)", kind, g.n, len(all))
		}
		for _, c := range []struct {
			p   float64
			got time.Duration
		}{{0.5, g.p.P50}, {0.9, g.p.P90}, {0.99, g.p.P99}} {
			exact := nearestRank(all, c.p)
			rel := math.Abs(float64(c.got-exact)) / float64(exact)
			worst = max(worst, rel)
			// +1ns: the digest's value is rounded to whole nanoseconds.
			if math.Abs(float64(c.got-exact)) > schema.DigestRelError*float64(exact)+1 {
				t.Errorf("%s p%g: digest %v, brute force %v: relative error %.4f > %.4f", kind, c.p*100, c.got, exact, rel, schema.DigestRelError)
			}
		}
	}
	t.Logf("worst relative error of 12 percentiles: %.5f (bound %.5f)", worst, schema.DigestRelError)

	// One function: only its durations.
	d, err = st.Durations(ctx, scopeA, queries.StatsQuery{Function: "fn-1", Window: w})
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(events / 3); d.QueueWaits < want || d.QueueWaits > want+1 {
		t.Errorf("fn-1 queue waits: %d, want about a third of %d", d.QueueWaits, events)
	}
	// Another tenant sees none of them.
	d, err = st.Durations(ctx, scopeB, queries.StatsQuery{Window: w})
	if err != nil || d.QueueWaits != 0 || d.QueueWait.P50 != 0 {
		t.Errorf("tenant B: %+v, %v", d, err)
	}
}
