package queries_test

import (
	"context"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/testkit/chtest"
	"github.com/statustrace/statustrace/testkit/querytest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// seeded creates a database with the schema, the views and the standard
// fixture, and a Store on it.
func seeded(t *testing.T) (*queries.Store, *chtest.DB, *querytest.Fixture) {
	t.Helper()
	db := chtest.New(t)
	st, fx, err := querytest.Seed(ctxT(t), db.Conn, db.Name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return st, db, fx
}

var (
	scopeA = queries.Scope{Tenant: querytest.TenantA}
	scopeB = queries.Scope{Tenant: querytest.TenantB}
)

func ids(evs []queries.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.RequestID
	}
	return out
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// TestQueries runs every read against one seeded database (creating it is
// the slow part on the local engine).
func TestQueries(t *testing.T) {
	st, db, fx := seeded(t)
	ctx := ctxT(t)

	t.Run("Get", func(t *testing.T) { testGet(t, ctx, st, fx) })
	t.Run("GetMatchesStatusView", func(t *testing.T) { testGetMatchesStatusView(t, ctx, db, st) })
	t.Run("List", func(t *testing.T) { testList(t, ctx, st, fx) })
	t.Run("Paging", func(t *testing.T) { testPaging(t, ctx, st) })
	t.Run("Hostile", func(t *testing.T) { testHostile(t, ctx, st, fx) })
	t.Run("Stats", func(t *testing.T) { testStats(t, ctx, st, fx) })
	t.Run("Durations", func(t *testing.T) { testDurations(t, ctx, st, fx) })
	t.Run("Export", func(t *testing.T) { testExport(t, ctx, st, fx) })
	t.Run("Views", func(t *testing.T) { testViews(t, ctx, db, st, fx) })
	t.Run("Retention", func(t *testing.T) { testRetention(t, ctx, db, st) })
	t.Run("Functions", func(t *testing.T) { testFunctions(t, ctx, st, fx) })
	t.Run("Changes", func(t *testing.T) { testChanges(t, ctx, st, fx) })
	t.Run("TraceSpans", func(t *testing.T) { testTraceSpans(t, ctx, st) })
}

func testGet(t *testing.T, ctx context.Context, st *queries.Store, fx *querytest.Fixture) {
	d, err := st.Get(ctx, scopeA, querytest.FinishedID)
	if err != nil {
		t.Fatal(err)
	}
	// Delivered twice: the timeline and the counts show it once.
	if d.Status != "FINISHED" || d.State != "FINISHED" || len(d.Timeline) != 3 || d.Transitions != 3 || d.Attempts != 1 {
		t.Errorf("finished event: %+v", d)
	}
	if !d.StartTime.Equal(fx.Base) || d.EndTime == nil || !d.EndTime.Equal(fx.Base.Add(30*time.Second)) {
		t.Errorf("finished event times: start %v end %v, want %v and +30s", d.StartTime, d.EndTime, fx.Base)
	}
	if len(d.TraceID) != 32 || strings.Trim(d.TraceID, "0123456789abcdef") != "" {
		t.Errorf("trace_id %q is not 32 lower-case hex digits", d.TraceID)
	}
	wantStates := []string{"QUEUED", "RUNNING", "FINISHED"}
	for i, tr := range d.Timeline {
		if tr.Seq != uint64(i+1) || tr.ToState != wantStates[i] {
			t.Errorf("timeline[%d] = seq %d %s, want seq %d %s", i, tr.Seq, tr.ToState, i+1, wantStates[i])
		}
	}
	if d.Timeline[1].InState != 10*time.Second || d.Timeline[2].InState != 20*time.Second || d.Timeline[0].InState != 0 {
		t.Errorf("in-state durations %v %v %v, want 0 10s 20s", d.Timeline[0].InState, d.Timeline[1].InState, d.Timeline[2].InState)
	}

	// Its terminal transition arrived first: status still the last seq's.
	d, err = st.Get(ctx, scopeA, querytest.FailedID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "FAILED" || d.Attempts != 2 || d.Errors != 2 || d.ErrorCode != "HandlerError" || d.ErrorMessage != "boom 2" ||
		d.InvokeType != "timer" || d.Qualifier != "v1" || len(d.Timeline) != 5 {
		t.Errorf("failed event: %+v", d)
	}
	for i, tr := range d.Timeline {
		if tr.Seq != uint64(i+1) {
			t.Errorf("timeline out of order: %+v", d.Timeline)
			break
		}
	}

	d, err = st.Get(ctx, scopeA, querytest.RunningID)
	if err != nil || d.Status != "RUNNING" || d.State != "RUNNING" || d.EndTime != nil {
		t.Errorf("running event: %+v, %v", d, err)
	}
	d, err = st.Get(ctx, scopeA, querytest.ExpiredID)
	if err != nil || d.Status != "FAILED" || d.State != "EXPIRED" {
		t.Errorf("expired event: %+v, %v", d, err)
	}

	// Tenant B has its own req-finished; each tenant sees only its own.
	d, err = st.Get(ctx, scopeB, querytest.FinishedID)
	if err != nil || d.Status != "FAILED" || d.Tenant != querytest.TenantB || len(d.Timeline) != 3 {
		t.Errorf("tenant B's req-finished: %+v, %v", d, err)
	}
	for _, c := range []struct {
		sc queries.Scope
		id string
	}{
		{scopeB, querytest.FailedID}, // another tenant's
		{scopeA, querytest.BOnlyID},  // another tenant's
		{scopeA, querytest.OldID},    // past retention
		{scopeA, "no-such-request"},  // missing
		{queries.Scope{Tenant: querytest.TenantA, Namespaces: []string{"default"}}, querytest.AbortedID}, // outside the namespaces
		{queries.Scope{Tenant: "tenant-c"}, querytest.FinishedID},                                        // unknown tenant
	} {
		if _, err := st.Get(ctx, c.sc, c.id); !errors.Is(err, queries.ErrNotFound) {
			t.Errorf("Get(%+v, %q) = %v, want ErrNotFound", c.sc, c.id, err)
		}
	}
	if d, err := st.Get(ctx, queries.Scope{Tenant: querytest.TenantA, Namespaces: []string{"other"}}, querytest.AbortedID); err != nil || d.Status != "ABORTED" {
		t.Errorf("aborted event in its namespace: %+v, %v", d, err)
	}
}

func list(t *testing.T, ctx context.Context, st *queries.Store, sc queries.Scope, f queries.ListFilter) *queries.Page {
	t.Helper()
	p, err := st.List(ctx, sc, f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	return p
}

func testList(t *testing.T, ctx context.Context, st *queries.Store, fx *querytest.Fixture) {
	asc := queries.ListFilter{Desc: false, Limit: 100}
	p := list(t, ctx, st, scopeA, asc)
	if got := ids(p.Events); !slices.Equal(got, querytest.VisibleA) || p.Total != uint64(len(querytest.VisibleA)) {
		t.Errorf("all of tenant A by start asc: %q total %d, want %q", got, p.Total, querytest.VisibleA)
	}
	p = list(t, ctx, st, scopeA, queries.ListFilter{Desc: true})
	if got := ids(p.Events); !slices.Equal(got, reversed(querytest.VisibleA)) {
		t.Errorf("by start desc: %q", got)
	}
	// By end time: the running event has none and sorts first ascending.
	p = list(t, ctx, st, scopeA, queries.ListFilter{OrderBy: queries.OrderByEndTime, Desc: true})
	wantEnd := []string{querytest.HostileRequestID, querytest.ExpiredID, querytest.AbortedID, querytest.FailedID, querytest.FinishedID, querytest.RunningID}
	if got := ids(p.Events); !slices.Equal(got, wantEnd) {
		t.Errorf("by end desc: %q, want %q", got, wantEnd)
	}
	for _, e := range p.Events {
		if e.Tenant != querytest.TenantA {
			t.Errorf("tenant A's list has %+v", e)
		}
	}

	cases := []struct {
		name string
		f    queries.ListFilter
		want []string
	}{
		{"status FAILED includes EXPIRED", queries.ListFilter{Statuses: []string{"failed"}}, []string{querytest.FailedID, querytest.ExpiredID, querytest.HostileRequestID}},
		{"detailed state", queries.ListFilter{Statuses: []string{"EXPIRED"}}, []string{querytest.ExpiredID}},
		{"two statuses", queries.ListFilter{Statuses: []string{"RUNNING", "ABORTED"}}, []string{querytest.RunningID, querytest.AbortedID}},
		{"finished", queries.ListFilter{Statuses: []string{"FINISHED"}}, []string{querytest.FinishedID}},
		{"function", queries.ListFilter{Function: "resize"}, []string{querytest.FinishedID, querytest.FailedID, querytest.RunningID, querytest.ExpiredID}},
		{"namespace", queries.ListFilter{Namespace: "other"}, []string{querytest.AbortedID}},
		{"qualifier", queries.ListFilter{Qualifier: "v1"}, []string{querytest.FailedID}},
		{"invoke type", queries.ListFilter{InvokeTypes: []string{"timer"}}, []string{querytest.FailedID}},
		{"request id", queries.ListFilter{RequestID: querytest.ExpiredID}, []string{querytest.ExpiredID}},
		{"start range", queries.ListFilter{Start: queries.TimeRange{From: fx.Base.Add(time.Minute), To: fx.Base.Add(3 * time.Minute)}}, []string{querytest.FailedID, querytest.RunningID}},
		{"start from only", queries.ListFilter{Start: queries.TimeRange{From: fx.Base.Add(4 * time.Minute)}}, []string{querytest.ExpiredID, querytest.HostileRequestID}},
		{"end range excludes running", queries.ListFilter{End: queries.TimeRange{From: fx.Base, To: fx.Base.Add(3*time.Minute + 35*time.Second)}}, []string{querytest.FinishedID, querytest.FailedID}},
		{"end to only", queries.ListFilter{End: queries.TimeRange{To: fx.Base.Add(time.Hour)}}, []string{querytest.FinishedID, querytest.FailedID, querytest.AbortedID, querytest.ExpiredID, querytest.HostileRequestID}},
		{"combined", queries.ListFilter{Function: "resize", Statuses: []string{"FAILED"}, Qualifier: "LATEST"}, []string{querytest.ExpiredID}},
		{"nothing", queries.ListFilter{Function: "resize", Namespace: "other"}, []string{}},
	}
	for _, c := range cases {
		c.f.Desc, c.f.Limit = false, 100
		p := list(t, ctx, st, scopeA, c.f)
		if got := ids(p.Events); !slices.Equal(got, c.want) || p.Total != uint64(len(c.want)) {
			t.Errorf("%s: %q total %d, want %q", c.name, got, p.Total, c.want)
		}
	}

	// Namespace-limited scope and the other tenant.
	p = list(t, ctx, st, queries.Scope{Tenant: querytest.TenantA, Namespaces: []string{"default"}}, asc)
	if got := ids(p.Events); !slices.Equal(got, []string{querytest.FinishedID, querytest.FailedID, querytest.RunningID, querytest.ExpiredID}) {
		t.Errorf("namespace-limited scope: %q", got)
	}
	p = list(t, ctx, st, scopeB, asc)
	if got := ids(p.Events); !slices.Equal(got, []string{querytest.FinishedID, querytest.BOnlyID}) || p.Events[0].Status != "FAILED" {
		t.Errorf("tenant B: %+v", p.Events)
	}
	n, err := st.Count(ctx, scopeA, queries.ListFilter{Statuses: []string{"FAILED"}})
	if err != nil || n != 3 {
		t.Errorf("Count FAILED = %d, %v; want 3", n, err)
	}
}

func testPaging(t *testing.T, ctx context.Context, st *queries.Store) {
	for _, by := range []queries.OrderBy{queries.OrderByStartTime, queries.OrderByEndTime} {
		for _, desc := range []bool{false, true} {
			all := ids(list(t, ctx, st, scopeA, queries.ListFilter{OrderBy: by, Desc: desc, Limit: 100}).Events)
			var got []string
			f := queries.ListFilter{OrderBy: by, Desc: desc, Limit: 4}
			for range 10 {
				p := list(t, ctx, st, scopeA, f)
				got = append(got, ids(p.Events)...)
				if p.Total != uint64(len(all)) {
					t.Errorf("total %d on a cursor page, want %d", p.Total, len(all))
				}
				if p.NextCursor == "" {
					break
				}
				f.Cursor = p.NextCursor
			}
			if !slices.Equal(got, all) {
				t.Errorf("%s desc=%v: cursor pages %q, want %q", by, desc, got, all)
			}
			p := list(t, ctx, st, scopeA, queries.ListFilter{OrderBy: by, Desc: desc, Limit: 2, Offset: 2})
			if !slices.Equal(ids(p.Events), all[2:4]) {
				t.Errorf("%s desc=%v offset 2: %q, want %q", by, desc, ids(p.Events), all[2:4])
			}
			p = list(t, ctx, st, scopeA, queries.ListFilter{OrderBy: by, Desc: desc, Limit: 2, Offset: 100})
			if len(p.Events) != 0 || p.Total != uint64(len(all)) || p.NextCursor != "" {
				t.Errorf("offset past the end: %+v", p)
			}
		}
	}
	// A cursor is bound to its order.
	p := list(t, ctx, st, scopeA, queries.ListFilter{Limit: 1})
	_, err := st.List(ctx, scopeA, queries.ListFilter{Limit: 1, Cursor: p.NextCursor, Desc: true})
	if !queries.IsParamError(err) {
		t.Errorf("cursor replayed with another order: %v", err)
	}
}

func testHostile(t *testing.T, ctx context.Context, st *queries.Store, fx *querytest.Fixture) {
	hostileOnly := []string{querytest.HostileRequestID}
	exact := []queries.ListFilter{
		{Function: querytest.Hostile},
		{Namespace: querytest.HostileNamespace},
		{Qualifier: querytest.HostileQualifier},
		{RequestID: querytest.HostileRequestID},
		{InvokeTypes: []string{querytest.Hostile}},
	}
	for _, f := range exact {
		if got := ids(list(t, ctx, st, scopeA, f).Events); !slices.Equal(got, hostileOnly) {
			t.Errorf("filter %+v matched %q, want only the hostile event", f, got)
		}
	}
	probes := []string{querytest.Hostile + "x", "' OR ''='", `\`, "\n", "x' OR tenant != '", querytest.Big, "{tenant:String}", "%", "_"}
	for _, v := range probes {
		for _, f := range []queries.ListFilter{
			{Function: v}, {Namespace: v}, {Qualifier: v}, {RequestID: v}, {InvokeTypes: []string{v}},
		} {
			p, err := st.List(ctx, scopeA, f)
			if err != nil {
				t.Fatalf("List(%.40q): %v", v, err)
			}
			if len(p.Events) != 0 || p.Total != 0 {
				t.Errorf("filter %.60q matched %q", v, ids(p.Events))
			}
		}
		if _, err := st.Get(ctx, scopeA, v); !errors.Is(err, queries.ErrNotFound) {
			t.Errorf("Get(%.40q) = %v, want ErrNotFound", v, err)
		}
		// As a tenant or namespace of the caller's scope.
		if p, err := st.List(ctx, queries.Scope{Tenant: v}, queries.ListFilter{}); err != nil || p.Total != 0 {
			t.Errorf("tenant %.40q: %+v %v", v, p, err)
		}
		if p, err := st.List(ctx, queries.Scope{Tenant: querytest.TenantA, Namespaces: []string{v}}, queries.ListFilter{}); err != nil || p.Total != 0 {
			t.Errorf("namespaces [%.40q]: %+v %v", v, p, err)
		}
		w := queries.TimeRange{From: fx.Base.Add(-time.Hour), To: fx.Now.Add(time.Hour)}
		s, err := st.Stats(ctx, scopeA, queries.StatsQuery{Function: v, Window: w})
		if err != nil || len(s.ByState) != 0 {
			t.Errorf("stats for function %.40q: %+v %v", v, s, err)
		}
	}
	d, err := st.Get(ctx, scopeA, querytest.HostileRequestID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Namespace != querytest.HostileNamespace || d.Function != querytest.Hostile || d.Qualifier != querytest.HostileQualifier ||
		d.ErrorCode != querytest.HostileErrorCode || !strings.HasPrefix(d.ErrorMessage, querytest.Hostile+"\\'\n") || d.InvokeType != querytest.Hostile {
		t.Errorf("hostile strings did not round-trip: %+v", d.Event)
	}
	if _, err := st.Get(ctx, queries.Scope{Tenant: querytest.TenantA, Namespaces: []string{querytest.HostileNamespace}}, querytest.HostileRequestID); err != nil {
		t.Errorf("hostile namespace in scope: %v", err)
	}
}

func window(fx *querytest.Fixture) queries.TimeRange {
	return queries.TimeRange{From: fx.Base.Add(-time.Hour), To: fx.Now.Add(time.Hour)}
}

func testStats(t *testing.T, ctx context.Context, st *queries.Store, fx *querytest.Fixture) {
	s, err := st.Stats(ctx, scopeA, queries.StatsQuery{Window: window(fx)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"QUEUED": 6, "RUNNING": 6, "RETRYING": 1, "TERMINATING": 1, "FINISHED": 1, "FAILED": 2, "EXPIRED": 1, "ABORTED": 1}
	if !maps.Equal(s.ByState, want) {
		t.Errorf("by state %v, want %v (duplicates counted once, the old event not at all)", s.ByState, want)
	}
	if s.Accepted != 6 || s.Attempts != 6 || s.Retries != 1 ||
		!maps.Equal(s.ByStatus, map[string]uint64{"FINISHED": 1, "FAILED": 3, "ABORTED": 1}) || s.FailureRate != 0.6 {
		t.Errorf("summary: %+v", s)
	}
	if s.StepSeconds != 60 || len(s.Series) == 0 {
		t.Fatalf("series: step %d, %d points", s.StepSeconds, len(s.Series))
	}
	var sum uint64
	for _, p := range s.Series {
		if p.Time.Before(fx.Base) || p.Time.Second() != 0 {
			t.Errorf("series point at %v", p.Time)
		}
		sum += p.ByState["QUEUED"]
	}
	if sum != 6 || s.Series[0].Time != fx.Base || s.Series[0].ByState["QUEUED"] != 1 {
		t.Errorf("series: %+v", s.Series)
	}
	wantErr := map[[2]string]uint64{{"RETRYING", "HandlerError"}: 1, {"FAILED", "HandlerError"}: 1, {"EXPIRED", "MaxAgeExceeded"}: 1, {"FAILED", querytest.HostileErrorCode}: 1}
	if len(s.Errors) != len(wantErr) {
		t.Errorf("errors: %+v", s.Errors)
	}
	for _, e := range s.Errors {
		if wantErr[[2]string{e.State, e.Code}] != e.Count {
			t.Errorf("error %+v unexpected", e)
		}
	}

	s, err = st.Stats(ctx, scopeA, queries.StatsQuery{Function: "resize", Qualifier: "LATEST", Window: window(fx), Step: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(s.ByState, map[string]uint64{"QUEUED": 3, "RUNNING": 2, "FINISHED": 1, "EXPIRED": 1}) || s.StepSeconds != 3600 || s.FailureRate != 0.5 {
		t.Errorf("resize LATEST: %+v", s)
	}
	s, err = st.Stats(ctx, queries.Scope{Tenant: querytest.TenantA, Namespaces: []string{"other"}}, queries.StatsQuery{Window: window(fx)})
	if err != nil || !maps.Equal(s.ByStatus, map[string]uint64{"FINISHED": 0, "FAILED": 0, "ABORTED": 1}) {
		t.Errorf("namespace-limited stats: %+v %v", s, err)
	}
	s, err = st.Stats(ctx, scopeB, queries.StatsQuery{Window: window(fx)})
	if err != nil || !maps.Equal(s.ByStatus, map[string]uint64{"FINISHED": 1, "FAILED": 1, "ABORTED": 0}) || s.ByState["QUEUED"] != 2 {
		t.Errorf("tenant B stats: %+v %v", s, err)
	}
	// A window after everything: nothing.
	s, err = st.Stats(ctx, scopeA, queries.StatsQuery{Window: queries.TimeRange{From: fx.Now.Add(time.Hour), To: fx.Now.Add(2 * time.Hour)}})
	if err != nil || len(s.ByState) != 0 || len(s.Series) != 0 {
		t.Errorf("empty window: %+v %v", s, err)
	}
}

func testDurations(t *testing.T, ctx context.Context, st *queries.Store, fx *querytest.Fixture) {
	d, err := st.Durations(ctx, scopeA, queries.StatsQuery{Window: window(fx)})
	if err != nil {
		t.Fatal(err)
	}
	near := func(got, want time.Duration) bool {
		return math.Abs(float64(got-want)) <= schema.DigestRelError*float64(want)
	}
	// Queue waits: 10s for the five events that ran. Runs: 20, 5, 5, 20, 10s.
	// One retry delay of 30s. Ends: 30s, 50s, 35s, 60s, 20s after the start.
	// Tenant B's 1s ones are not mixed in; the finished event, delivered
	// twice, counts once.
	if d.QueueWaits != 5 || !near(d.QueueWait.P50, 10*time.Second) || !near(d.QueueWait.P99, 10*time.Second) {
		t.Errorf("queue wait: %+v", d)
	}
	if d.Runs != 5 || !near(d.Run.P50, 10*time.Second) || !near(d.Run.P99, 20*time.Second) {
		t.Errorf("runs: %+v", d)
	}
	if d.RetryDelays != 1 || !near(d.RetryDelayP50, 30*time.Second) {
		t.Errorf("retry delay: %+v", d)
	}
	if d.EndToEnds != 5 || !near(d.EndToEnd.P50, 35*time.Second) || !near(d.EndToEnd.P99, 60*time.Second) || d.MaxRelativeError != schema.DigestRelError {
		t.Errorf("end to end: %+v", d)
	}
	// The raw computation agrees.
	raw, err := st.DurationsFromTransitions(ctx, scopeA, queries.StatsQuery{Window: window(fx)})
	if err != nil {
		t.Fatal(err)
	}
	if raw.QueueWaits != d.QueueWaits || raw.Runs != d.Runs || raw.RetryDelays != d.RetryDelays || raw.QueueWait.P50 != 10*time.Second {
		t.Errorf("raw durations %+v, digests %+v", raw, d)
	}
}

func testExport(t *testing.T, ctx context.Context, st *queries.Store, fx *querytest.Fixture) {
	var evs []queries.Event
	err := st.ExportEvents(ctx, scopeA, queries.ListFilter{Start: window(fx)}, func(e queries.Event) error {
		evs = append(evs, e)
		return nil
	})
	if err != nil || !slices.Equal(ids(evs), querytest.VisibleA) {
		t.Errorf("export events: %q %v", ids(evs), err)
	}
	w := queries.WindowFilter{Window: window(fx)}
	var trs []queries.TransitionRecord
	err = st.ExportTransitions(ctx, scopeA, w, func(r queries.TransitionRecord) error {
		trs = append(trs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 3 + 5 + 2 + 4 + 2 + 3 distinct transitions, duplicates and the old event left out.
	if len(trs) != 19 {
		t.Errorf("exported %d transitions, want 19", len(trs))
	}
	n, err := st.CountTransitions(ctx, scopeA, w)
	if err != nil || n != 19 {
		t.Errorf("CountTransitions = %d, %v", n, err)
	}
	for i := 1; i < len(trs); i++ {
		a, b := trs[i-1], trs[i]
		if a.RequestID > b.RequestID || a.RequestID == b.RequestID && a.Seq >= b.Seq {
			t.Errorf("export order: %s/%d before %s/%d", a.RequestID, a.Seq, b.RequestID, b.Seq)
		}
		if b.Tenant != querytest.TenantA {
			t.Errorf("exported %+v", b)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err = st.ExportTransitions(ctx, scopeA, w, func(queries.TransitionRecord) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("callback error: %v after %d calls", err, calls)
	}
}

// The installed views give the same answers as the package (which runs the
// same SQL inline).
func testViews(t *testing.T, ctx context.Context, db *chtest.DB, st *queries.Store, fx *querytest.Fixture) {
	var got []string
	rows, err := db.Conn.Query(ctx, `SELECT request_id FROM event_list(tenant = {t:String}, namespaces = [], namespace = '', function = 'resize',
    qualifier = '', request_id = '', invoke_types = [], statuses = ['FAILED'], start_from_ms = 0, start_to_ms = 0, end_from_ms = 0, end_to_ms = 0)
ORDER BY start_time`, clickhouse.Named("t", querytest.TenantA))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	rows.Close()
	if !slices.Equal(got, []string{querytest.FailedID, querytest.ExpiredID}) {
		t.Errorf("event_list view: %q", got)
	}
	var status string
	var n uint64
	err = db.Conn.QueryRow(ctx, "SELECT status, transitions FROM event_status(tenant = {t:String}, namespaces = [], request_id = {r:String})",
		clickhouse.Named("t", querytest.TenantA), clickhouse.Named("r", querytest.FailedID)).Scan(&status, &n)
	if err != nil || status != "FAILED" || n != 5 {
		t.Errorf("event_status view: %s %d %v", status, n, err)
	}
	err = db.Conn.QueryRow(ctx, "SELECT count() FROM event_timeline(tenant = {t:String}, namespaces = [], request_id = {r:String})",
		clickhouse.Named("t", querytest.TenantA), clickhouse.Named("r", querytest.FailedID)).Scan(&n)
	if err != nil || n != 5 {
		t.Errorf("event_timeline view: %d %v", n, err)
	}
	from, to := window(fx).From.UnixMilli(), window(fx).To.UnixMilli()
	wargs := []any{clickhouse.Named("t", querytest.TenantA), clickhouse.Named("f", from), clickhouse.Named("to", to)}
	err = db.Conn.QueryRow(ctx, `SELECT transitions FROM status_counts(tenant = {t:String}, namespaces = [], namespace = '', function = '', qualifier = '',
    from_ms = {f:Int64}, to_ms = {to:Int64}) WHERE state = 'QUEUED'`, wargs...).Scan(&n)
	if err != nil || n != 6 {
		t.Errorf("status_counts view: %d %v", n, err)
	}
	err = db.Conn.QueryRow(ctx, `SELECT sum(transitions) FROM status_series(tenant = {t:String}, namespaces = [], namespace = '', function = '', qualifier = '',
    from_ms = {f:Int64}, to_ms = {to:Int64}, step_s = 3600) WHERE state = 'RUNNING'`, wargs...).Scan(&n)
	if err != nil || n != 6 {
		t.Errorf("status_series view: %d %v", n, err)
	}
	err = db.Conn.QueryRow(ctx, `SELECT sum(transitions) FROM status_errors(tenant = {t:String}, namespaces = [], namespace = '', function = '', qualifier = '',
    from_ms = {f:Int64}, to_ms = {to:Int64})`, wargs...).Scan(&n)
	if err != nil || n != 4 {
		t.Errorf("status_errors view: %d %v", n, err)
	}
	err = db.Conn.QueryRow(ctx, `SELECT queue_waits FROM event_durations(tenant = {t:String}, namespaces = [], namespace = '', function = '', qualifier = '',
    from_ms = {f:Int64}, to_ms = {to:Int64})`, wargs...).Scan(&n)
	if err != nil || n != 5 {
		t.Errorf("event_durations view: %d %v", n, err)
	}
	err = db.Conn.QueryRow(ctx, `SELECT count() FROM transitions_window(tenant = {t:String}, namespaces = [], namespace = '', function = '', qualifier = '',
    from_ms = {f:Int64}, to_ms = {to:Int64})`, wargs...).Scan(&n)
	if err != nil || n != 19 {
		t.Errorf("transitions_window view: %d %v", n, err)
	}
	// Install again: nothing to do. Then with one view changed behind its
	// back: Install puts this binary's view back.
	if err := queries.Install(ctx, db.Conn, queries.InstallOptions{Database: db.Name}); err != nil {
		t.Errorf("second Install: %v", err)
	}
	if err := db.Conn.Exec(ctx, "DROP VIEW event_list"); err != nil {
		t.Fatal(err)
	}
	if err := db.Conn.Exec(ctx, "CREATE VIEW event_status AS SELECT 1 AS x COMMENT 'old'"); err == nil {
		t.Fatal("created a view over an existing one")
	}
	if err := db.Conn.Exec(ctx, "DROP VIEW event_status"); err != nil {
		t.Fatal(err)
	}
	if err := db.Conn.Exec(ctx, "CREATE VIEW event_status AS SELECT 1 AS x COMMENT 'old'"); err != nil {
		t.Fatal(err)
	}
	if err := queries.Install(ctx, db.Conn, queries.InstallOptions{Database: db.Name}); err != nil {
		t.Errorf("Install over a changed view: %v", err)
	}
	err = db.Conn.QueryRow(ctx, "SELECT count() FROM event_list(tenant = {t:String}, namespaces = [], namespace = '', function = '', qualifier = '', request_id = '', invoke_types = [], statuses = [], start_from_ms = 0, start_to_ms = 0, end_from_ms = 0, end_to_ms = 0)",
		clickhouse.Named("t", querytest.TenantA)).Scan(&n)
	if err != nil || n != 6 {
		t.Errorf("re-installed event_list: %d %v", n, err)
	}
	err = db.Conn.QueryRow(ctx, "SELECT transitions FROM event_status(tenant = {t:String}, namespaces = [], request_id = {r:String})",
		clickhouse.Named("t", querytest.TenantA), clickhouse.Named("r", querytest.FailedID)).Scan(&n)
	if err != nil || n != 5 {
		t.Errorf("replaced event_status: %d %v", n, err)
	}
	if err := queries.Install(ctx, db.Conn, queries.InstallOptions{Database: "other_db"}); err == nil {
		t.Error("Install into a database other than the connection's succeeded")
	}
}

// The old event is stored (inside the tables' TTL) but past the retention
// the queries apply; widening the setting brings it back, which shows the
// filter, not a merge, hides it.
func testRetention(t *testing.T, ctx context.Context, db *chtest.DB, st *queries.Store) {
	var stored uint64
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM transitions WHERE request_id = {r:String}", clickhouse.Named("r", querytest.OldID)).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored == 0 {
		t.Skip("the engine already dropped the old rows: nothing to show")
	}
	if err := querytest.SetVisibleRetention(ctx, db.Conn, 72*time.Hour); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := querytest.SetVisibleRetention(ctx, db.Conn, querytest.VisibleRetention); err != nil {
			t.Error(err)
		}
	}()
	d, err := st.Get(ctx, scopeA, querytest.OldID)
	if err != nil || d.Status != "FINISHED" {
		t.Errorf("old event with a 72h retention: %+v %v", d, err)
	}
	p := list(t, ctx, st, scopeA, queries.ListFilter{RequestID: querytest.OldID})
	if p.Total != 1 {
		t.Errorf("old event listed %d times with a 72h retention", p.Total)
	}
}

// Get derives the status from the timeline in Go; the event_status view
// computes it in SQL. Both must agree on every event.
func testGetMatchesStatusView(t *testing.T, ctx context.Context, db *chtest.DB, st *queries.Store) {
	for _, c := range []struct {
		tenant string
		ids    []string
	}{
		{querytest.TenantA, querytest.VisibleA},
		{querytest.TenantB, []string{querytest.FinishedID, querytest.BOnlyID}},
	} {
		for _, id := range c.ids {
			d, err := st.Get(ctx, queries.Scope{Tenant: c.tenant}, id)
			if err != nil {
				t.Fatal(err)
			}
			var (
				v                      queries.EventDetail
				startNs, endNs, lastNs int64
			)
			err = db.Conn.QueryRow(ctx, `SELECT tenant, namespace, function, qualifier, request_id, status, state, invoke_type, attempts, last_seq,
    transitions, errors, start_ns, end_ns, last_ns, error_code, error_message, node, trace_id
FROM event_status(tenant = {t:String}, namespaces = [], request_id = {r:String})`, clickhouse.Named("t", c.tenant), clickhouse.Named("r", id)).Scan(
				&v.Tenant, &v.Namespace, &v.Function, &v.Qualifier, &v.RequestID, &v.Status, &v.State, &v.InvokeType, &v.Attempts, &v.LastSeq,
				&v.Transitions, &v.Errors, &startNs, &endNs, &lastNs, &v.ErrorCode, &v.ErrorMessage, &v.Node, &v.TraceID)
			if err != nil {
				t.Fatalf("event_status %s: %v", id, err)
			}
			gotEnd := int64(0)
			if d.EndTime != nil {
				gotEnd = d.EndTime.UnixNano()
			}
			if d.Tenant != v.Tenant || d.Namespace != v.Namespace || d.Function != v.Function || d.Qualifier != v.Qualifier ||
				d.RequestID != v.RequestID || d.Status != v.Status || d.State != v.State || d.InvokeType != v.InvokeType ||
				d.Attempts != v.Attempts || d.LastSeq != v.LastSeq || d.Transitions != v.Transitions || d.Errors != v.Errors ||
				d.StartTime.UnixNano() != startNs || gotEnd != endNs || d.LastTime.UnixNano() != lastNs ||
				d.ErrorCode != v.ErrorCode || d.ErrorMessage != v.ErrorMessage || d.Node != v.Node || d.TraceID != v.TraceID {
				t.Errorf("%s/%s: Get %+v\nview %+v (start %d end %d last %d)", c.tenant, id, d.Event, v.Event, startNs, endNs, lastNs)
			}
		}
	}
}

// Two transitions that claim one seq (a producer bug or a replay with a
// different state) resolve the same way everywhere, whichever arrives
// last: terminal over non-terminal, then the later state. (Before merges:
// transitions is a ReplacingMergeTree without a version column, so a merge
// keeps the row inserted last; see the report to the schema owner.)
func TestSameSeqConflict(t *testing.T) {
	db := chtest.New(t)
	ctx := ctxT(t)
	if err := querytest.Setup(ctx, db.Conn, db.Name); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour)
	keys := func(id string) event.Keys {
		return event.Keys{Tenant: "t", Namespace: "default", Function: "f", Qualifier: "LATEST", RequestID: id}
	}
	// c1: seq 3 is FINISHED and FAILED; FAILED (later in the state order) wins.
	c1 := querytest.History(keys("c1"), "async", at,
		querytest.Step{To: event.StateRunning, After: time.Second}, querytest.Step{To: event.StateFinished, After: time.Second},
		querytest.Step{To: event.StateFailed, SameSeq: true})
	// c2: seq 2 is RUNNING and ABORTED; the terminal one wins, and it was sent first.
	c2 := querytest.History(keys("c2"), "async", at,
		querytest.Step{To: event.StateAborted, After: time.Second}, querytest.Step{To: event.StateRunning, SameSeq: true})
	for _, batch := range [][]querytest.Row{{c1[3], c2[1]}, {c1[0], c1[1], c1[2], c2[0], c2[2]}} {
		if err := querytest.Insert(ctx, db.Conn, batch); err != nil {
			t.Fatal(err)
		}
	}
	st, err := queries.New(ctx, db.Conn)
	if err != nil {
		t.Fatal(err)
	}
	sc := queries.Scope{Tenant: "t"}
	for id, want := range map[string]string{"c1": "FAILED", "c2": "ABORTED"} {
		d, err := st.Get(ctx, sc, id)
		if err != nil || d.State != want || d.Timeline[len(d.Timeline)-1].ToState != want {
			t.Errorf("Get(%s) = %+v %v, want %s", id, d, err, want)
		}
		p, err := st.List(ctx, sc, queries.ListFilter{RequestID: id})
		if err != nil || len(p.Events) != 1 || p.Events[0].State != want {
			t.Errorf("List(%s) = %+v %v, want %s (the events table)", id, p, err, want)
		}
	}
}
