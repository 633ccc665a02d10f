package queries_test

import (
	"context"
	"maps"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/testkit/querytest"
)

// testFunctions holds each function's summary to the window statistics of
// that function alone, and the list of functions to the fixture's.
func testFunctions(t *testing.T, ctx context.Context, st *queries.Store, fx *querytest.Fixture) {
	q := queries.StatsQuery{Window: window(fx)}
	fns, err := st.Functions(ctx, scopeA, q, true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]bool{}
	for _, b := range fx.Batches {
		for _, r := range b {
			if r.Tenant == querytest.TenantA && !r.Time.Before(q.Window.From) && r.Time.Before(q.Window.To) {
				want[[2]string{r.Namespace, r.Function}] = true
			}
		}
	}
	got := map[[2]string]bool{}
	for _, f := range fns {
		got[[2]string{f.Namespace, f.Function}] = true
		s, err := st.Stats(ctx, scopeA, queries.StatsQuery{Namespace: f.Namespace, Function: f.Function, Window: q.Window})
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(f.ByState, s.ByState) || !maps.Equal(f.ByStatus, s.ByStatus) || f.Accepted != s.Accepted ||
			f.Retries != s.Retries || f.Attempts != s.Attempts || f.FailureRate != s.FailureRate {
			t.Errorf("%s/%s: summary %+v, stats %+v", f.Namespace, f.Function, f, s)
		}
		var accepted uint64
		for _, p := range f.Series {
			accepted += p.Accepted
		}
		if accepted != f.Accepted {
			t.Errorf("%s/%s: series accepts %d, want %d", f.Namespace, f.Function, accepted, f.Accepted)
		}
		d, err := st.Durations(ctx, scopeA, queries.StatsQuery{Namespace: f.Namespace, Function: f.Function, Window: q.Window})
		if err != nil || f.Durations == nil || *f.Durations != *d {
			t.Errorf("%s/%s: durations %+v, want %+v (%v)", f.Namespace, f.Function, f.Durations, d, err)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("functions %v, want %v", got, want)
	}
	// Tenant B sees only its own function; a namespace-limited token only
	// that namespace.
	fns, err = st.Functions(ctx, scopeB, q, false)
	if err != nil || len(fns) != 1 || fns[0].Accepted != 2 || fns[0].Durations != nil {
		t.Errorf("tenant B: %+v %v", fns, err)
	}
	fns, err = st.Functions(ctx, queries.Scope{Tenant: querytest.TenantA, Namespaces: []string{"other"}}, q, false)
	if err != nil || len(fns) != 1 || fns[0].Namespace != "other" {
		t.Errorf("namespace-limited: %+v %v", fns, err)
	}
}

// testChanges: from a watermark, the events whose last transition is later,
// oldest change first; the same set as the list.
func testChanges(t *testing.T, ctx context.Context, st *queries.Store, fx *querytest.Fixture) {
	all, err := st.Changes(ctx, scopeA, queries.ListFilter{}, 0, queries.MaxChanges)
	if err != nil {
		t.Fatal(err)
	}
	page := list(t, ctx, st, scopeA, queries.ListFilter{Limit: queries.MaxLimit})
	gotIDs, wantIDs := ids(all), ids(page.Events)
	sort.Strings(gotIDs)
	sort.Strings(wantIDs)
	if !slices.Equal(gotIDs, wantIDs) {
		t.Fatalf("changes since 0: %v, want the list's %v", gotIDs, wantIDs)
	}
	if !slices.IsSortedFunc(all, func(a, b queries.Event) int { return a.LastTime.Compare(b.LastTime) }) {
		t.Errorf("changes not oldest first: %v", ids(all))
	}
	// From the middle: exactly the later ones.
	mid := all[len(all)/2].LastTime.UnixNano()
	later, err := st.Changes(ctx, scopeA, queries.ListFilter{}, mid, queries.MaxChanges)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range all {
		if e.LastTime.UnixNano() > mid {
			want = append(want, e.RequestID)
		}
	}
	if !slices.Equal(ids(later), want) || len(want) == 0 || len(want) == len(all) {
		t.Errorf("changes since the middle: %v, want %v", ids(later), want)
	}
	// Filters apply; the limit holds; tenant B's same request ID is not A's.
	one, err := st.Changes(ctx, scopeA, queries.ListFilter{RequestID: querytest.FinishedID}, 0, 1)
	if err != nil || len(one) != 1 || one[0].Tenant != querytest.TenantA || one[0].Function != "resize" {
		t.Errorf("one event: %+v %v", one, err)
	}
	two, err := st.Changes(ctx, scopeA, queries.ListFilter{}, 0, 2)
	if err != nil || !slices.Equal(ids(two), ids(all[:2])) {
		t.Errorf("limit 2: %v %v", ids(two), err)
	}
	none, err := st.Changes(ctx, scopeA, queries.ListFilter{}, fx.Now.Add(time.Hour).UnixNano(), 10)
	if err != nil || len(none) != 0 {
		t.Errorf("changes after everything: %v %v", ids(none), err)
	}
	if _, err := st.Changes(ctx, scopeA, queries.ListFilter{}, 0, 0); err == nil {
		t.Error("limit 0 accepted")
	}
}

// testTraceSpans: without an otel_traces table (the fixture has none) an
// event's trace has no spans and no error.
func testTraceSpans(t *testing.T, ctx context.Context, st *queries.Store) {
	d, err := st.Get(ctx, scopeA, querytest.FinishedID)
	if err != nil {
		t.Fatal(err)
	}
	d.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	spans, err := st.TraceSpans(ctx, d)
	if err != nil || spans != nil {
		t.Errorf("spans without otel_traces: %v %v", spans, err)
	}
}
