package chtest

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestStalePicksOnlyOldTestDatabases(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	old := databaseName("TestOld/sub", now.Add(-2*StaleAfter))
	fresh := databaseName("TestFresh", now.Add(-StaleAfter/2))
	names := []string{old, fresh, "statustrace", "statustrace_demo", "t_user_thing", "default", "t_x_1700000000_zzzzzzzz"}
	got := Stale(names, now.Add(-StaleAfter))
	if !slices.Equal(got, []string{old}) {
		t.Errorf("Stale = %v, want only %s", got, old)
	}
}

// On a real engine: a database left by a killed run an hour ago goes, a
// running test's and a non-test database stay.
func TestSweepDropsStaleDatabases(t *testing.T) {
	t.Parallel()
	db := New(t) // this test's own: must survive
	ctx := context.Background()
	now := time.Now()
	old := databaseName("TestKilledRun", now.Add(-2*StaleAfter))
	keep := "keep_" + db.Name // not a test database's name
	for _, n := range []string{old, keep} {
		if err := db.Conn.Exec(ctx, "CREATE DATABASE "+n); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = db.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+keep) })
	dropped, err := Sweep(ctx, db.Conn, now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dropped, old) || slices.Contains(dropped, db.Name) || slices.Contains(dropped, keep) {
		t.Errorf("dropped %v: want %s, not %s nor %s", dropped, old, db.Name, keep)
	}
	var n uint64
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name IN (?, ?, ?)", old, keep, db.Name).Scan(&n); err != nil || n != 2 {
		t.Errorf("after the sweep %d of (stale, kept, own) exist, want 2: %v", n, err)
	}
}
