package queries_test

import (
	"testing"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/testkit/chtest"
	"github.com/statustrace/statustrace/testkit/querytest"
)

// The backlog counts events whose current status is waiting (queued, or
// waiting for a retry) and dates the oldest by its acceptance; events that
// run or ended, other tenants, and duplicates do not count.
func TestBacklog(t *testing.T) {
	db := chtest.New(t)
	ctx := ctxT(t)
	if err := querytest.Setup(ctx, db.Conn, db.Name); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	k := func(tenant, fn, id string) event.Keys {
		return event.Keys{Tenant: tenant, Namespace: "default", Function: fn, Qualifier: "LATEST", RequestID: id}
	}
	R, Y := event.StateRunning, event.StateRetrying
	var rows []querytest.Row
	for _, h := range [][]querytest.Row{
		querytest.History(k(querytest.TenantA, "resize", "q1"), "async", now.Add(-5*time.Minute)),
		querytest.History(k(querytest.TenantA, "resize", "q2"), "async", now.Add(-2*time.Minute)),
		querytest.History(k(querytest.TenantA, "resize", "retrying"), "async", now.Add(-10*time.Minute),
			querytest.Step{To: R, After: time.Second}, querytest.Step{To: Y, After: time.Second, Code: "E"}),
		querytest.History(k(querytest.TenantA, "resize", "done"), "async", now.Add(-30*time.Minute),
			querytest.Step{To: R, After: time.Second}, querytest.Step{To: event.StateFinished, After: time.Second}),
		querytest.History(k(querytest.TenantA, "resize", "running"), "async", now.Add(-20*time.Minute),
			querytest.Step{To: R, After: time.Second}),
		querytest.History(k(querytest.TenantA, "thumbnail", "t1"), "async", now.Add(-time.Minute)),
		querytest.History(k(querytest.TenantB, "resize", "b1"), "async", now.Add(-time.Hour)),
	} {
		rows = append(rows, h...)
	}
	if err := querytest.Insert(ctx, db.Conn, rows); err != nil {
		t.Fatal(err)
	}
	// Re-delivered in a later batch: still one waiting event.
	if err := querytest.Insert(ctx, db.Conn, querytest.History(k(querytest.TenantA, "resize", "q1"), "async", now.Add(-5*time.Minute))); err != nil {
		t.Fatal(err)
	}
	st, err := queries.New(ctx, db.Conn)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Backlog(ctx, scopeA, queries.BacklogQuery{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("backlog: %+v, want resize and thumbnail", got)
	}
	resize, thumb := got[0], got[1]
	if resize.Function != "resize" || resize.Waiting != 3 || !resize.OldestAcceptedAt.Equal(now.Add(-10*time.Minute)) || resize.OldestAgeSeconds != 600 {
		t.Errorf("resize backlog: %+v, want 3 waiting, oldest 10 minutes old", resize)
	}
	if thumb.Function != "thumbnail" || thumb.Waiting != 1 || thumb.OldestAgeSeconds != 60 {
		t.Errorf("thumbnail backlog: %+v", thumb)
	}
	got, err = st.Backlog(ctx, scopeA, queries.BacklogQuery{Function: "thumbnail", Now: now})
	if err != nil || len(got) != 1 || got[0].Function != "thumbnail" {
		t.Errorf("filtered backlog: %+v, %v", got, err)
	}
	got, err = st.Backlog(ctx, scopeA, queries.BacklogQuery{Function: "' OR 1=1 --", Now: now})
	if err != nil || len(got) != 0 {
		t.Errorf("hostile filter: %+v, %v", got, err)
	}
}
