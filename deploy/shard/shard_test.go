package shard_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/statustrace/statustrace/deploy/shard"
	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/exporter/migrate"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/testkit/querytest"
)

const (
	shardedDB = "statustrace_sharded"
	singleDB  = "statustrace_single"
)

// TestShardedMatchesSingleNode writes one workload to a single node and,
// through the router's Distributed tables, to two shards, and checks that
// the queries package answers the same on both: per-status counts and the
// rest of the statistics, event counts and lists, every lookup with its
// timeline.
func TestShardedMatchesSingleNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three local ClickHouse endpoints (native chDB)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	set, err := shard.Start(ctx, moduleRoot(t), t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := set.Stop(); err != nil {
			t.Error(err)
		}
	})

	// Every node migrated on its own; the router also holds the single-node
	// database (another database on the same engine).
	for _, e := range set.Nodes() {
		c := open(t, e.DSN("default", nil))
		if _, err := migrate.Up(ctx, c, migrate.Options{Database: shardedDB, Cluster: shard.Cluster, PerNode: true}); err != nil {
			t.Fatalf("migrate %s: %v", e.Name, err)
		}
	}
	if err := open(t, set.Router.DSN("default", nil)).Exec(ctx, "CREATE DATABASE "+singleDB); err != nil {
		t.Fatal(err)
	}
	router := open(t, set.Router.DSN(shardedDB, shard.RouterSettings))
	single := open(t, set.Router.DSN(singleDB, nil))
	if err := querytest.Setup(ctx, single, singleDB); err != nil {
		t.Fatal(err)
	}

	t.Logf("started and migrated 2 shards and the router")
	began := time.Now()
	now := time.Now().UTC()
	fx := querytest.NewFixture(now)
	batches := append(append([][]querytest.Row{}, fx.Batches...), workload(rand.New(rand.NewPCG(16, 2)), fx.Base, 100)...)
	for _, c := range []driver.Conn{single, router} {
		if err := querytest.SetVisibleRetention(ctx, c, querytest.VisibleRetention); err != nil {
			t.Fatal(err)
		}
		for _, b := range batches {
			if err := querytest.Insert(ctx, c, b); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Logf("loaded: %s", time.Since(began))
	pluginIDs := sendThroughCollector(t, ctx, set, fx.Base, 30)
	t.Logf("sent %d events through the plugin and a collector: %s", len(pluginIDs), time.Since(began))
	// The shards hold the data, split by event.
	var total uint64
	owner := map[string]string{}
	for _, e := range set.Shards {
		c := open(t, e.DSN(shardedDB, nil))
		var n uint64
		if err := c.QueryRow(ctx, "SELECT count() FROM "+schema.Transitions+schema.LocalSuffix).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("%s holds no transitions: nothing was sharded", e.Name)
		}
		total += n
		rows, err := c.Query(ctx, "SELECT DISTINCT tenant, request_id FROM "+schema.Transitions+schema.LocalSuffix)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var tenant, id string
			if err := rows.Scan(&tenant, &id); err != nil {
				t.Fatal(err)
			}
			if o, ok := owner[tenant+"\x00"+id]; ok {
				t.Errorf("event %s/%q on %s and %s: an event must live on one shard", tenant, id, o, e.Name)
			}
			owner[tenant+"\x00"+id] = e.Name
		}
		rows.Close()
	}
	// Distinct transitions: re-delivered rows collapse when parts merge,
	// which happens at different times on different nodes.
	distinct := "SELECT uniqExact(tenant, request_id, seq, to_state) AS n FROM " + schema.Transitions
	var want, got uint64
	if err := single.QueryRow(ctx, distinct).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if err := router.QueryRow(ctx, "SELECT sum(n) FROM ("+distinct+")").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("the shards hold %d distinct transitions, the single node %d", got, want)
	}

	ss, err := queries.New(ctx, single)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := queries.New(ctx, router)
	if err != nil {
		t.Fatal(err)
	}
	tenants := map[string][]string{pluginTenant: pluginIDs}
	for _, b := range batches {
		for _, r := range b {
			tenants[r.Tenant] = append(tenants[r.Tenant], r.RequestID)
		}
	}
	window := queries.TimeRange{From: fx.Base.Add(-time.Hour), To: now.Add(time.Hour).Truncate(time.Minute)}
	t.Logf("checked the shards: %s", time.Since(began))
	var lookups, statuses int
	for tenant, ids := range tenants {
		sc := queries.Scope{Tenant: tenant}
		same(t, tenant+" stats", func(s *queries.Store) (any, error) {
			return s.Stats(ctx, sc, queries.StatsQuery{Window: window})
		}, ss, rs)
		st, err := rs.Stats(ctx, sc, queries.StatsQuery{Window: window})
		if err != nil {
			t.Fatal(err)
		}
		statuses += len(st.ByState)
		// Not Durations: its percentiles merge digest states across
		// shards, the merge on the router the local engine cannot serve
		// (see RouterSettings): through this router it answers from the
		// first shard's row only (deploy/README.md).
		same(t, tenant+" count", func(s *queries.Store) (any, error) {
			return s.Count(ctx, sc, queries.ListFilter{})
		}, ss, rs)
		for _, f := range []queries.ListFilter{
			{Limit: 7},
			{Limit: 7, OrderBy: queries.OrderByEndTime, Desc: true},
			{Limit: queries.MaxLimit, Statuses: []string{"FAILED"}},
		} {
			same(t, fmt.Sprintf("%s list %+v", tenant, f), func(s *queries.Store) (any, error) { return allPages(ctx, s, sc, f) }, ss, rs)
		}
		getStart := time.Now()
		seen := map[string]bool{}
		for _, id := range append(ids, "no-such-request") {
			if seen[id] {
				continue
			}
			seen[id] = true
			lookups++
			same(t, tenant+" get "+id, func(s *queries.Store) (any, error) {
				d, err := s.Get(ctx, sc, id)
				if errors.Is(err, queries.ErrNotFound) {
					return "not found", nil
				}
				return d, err
			}, ss, rs)
		}
		t.Logf("%s: %d lookups in %s", tenant, len(seen), time.Since(getStart))
	}
	t.Logf("%d transition rows on %d shards (%d events), %d tenants: %d lookups and %d per-state counts equal to the single node's",
		total, len(set.Shards), len(owner), len(tenants), lookups, statuses)
}

// same runs q on both stores and fails when the answers differ.
func same(t *testing.T, what string, q func(*queries.Store) (any, error), single, sharded *queries.Store) {
	t.Helper()
	a, err := q(single)
	if err != nil {
		t.Fatalf("%s on the single node: %v", what, err)
	}
	b, err := q(sharded)
	if err != nil {
		t.Fatalf("%s across shards: %v", what, err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("%s differs:\nsingle node: %+v\nsharded:     %+v", what, deref(a), deref(b))
	}
}

func deref(v any) any {
	if r := reflect.ValueOf(v); r.Kind() == reflect.Pointer && !r.IsNil() {
		return r.Elem().Interface()
	}
	return v
}

func allPages(ctx context.Context, s *queries.Store, sc queries.Scope, f queries.ListFilter) ([]queries.Event, error) {
	var out []queries.Event
	for range 100 {
		p, err := s.List(ctx, sc, f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Events...)
		if p.NextCursor == "" {
			return out, nil
		}
		f.Cursor = p.NextCursor
	}
	return nil, errors.New("more than 100 pages")
}

// workload makes n events over 3 tenants in batches of about 50 rows, with
// every outcome, retries, and re-deliveries (a batch re-sent later).
func workload(rng *rand.Rand, base time.Time, n int) [][]querytest.Row {
	var rows []querytest.Row
	for i := range n {
		keys := event.Keys{
			Tenant:    fmt.Sprintf("tenant-w%d", rng.IntN(3)),
			Namespace: fmt.Sprintf("ns-%d", rng.IntN(2)),
			Function:  fmt.Sprintf("fn-%d", rng.IntN(4)),
			Qualifier: []string{"LATEST", "v1"}[rng.IntN(2)],
			RequestID: fmt.Sprintf("w-%04d-%08x", i, rng.Uint32()),
		}
		d := func() time.Duration { return time.Duration(1+rng.IntN(120)) * time.Second }
		steps := []querytest.Step{{To: event.StateRunning, After: d()}}
		for range rng.IntN(3) {
			steps = append(steps, querytest.Step{To: event.StateRetrying, After: d(), Code: fmt.Sprintf("E%d", rng.IntN(3)), Message: "retry"},
				querytest.Step{To: event.StateRunning, After: d(), NewTry: true})
		}
		switch rng.IntN(6) {
		case 0: // still running
		case 1:
			steps = append(steps, querytest.Step{To: event.StateFailed, After: d(), Code: "HandlerError", Message: "boom"})
		case 2:
			steps = append(steps, querytest.Step{To: event.StateTerminating, After: d()}, querytest.Step{To: event.StateAborted, After: d()})
		case 3:
			steps = append(steps, querytest.Step{To: event.StateExpired, After: d()})
		default:
			steps = append(steps, querytest.Step{To: event.StateFinished, After: d()})
		}
		start := base.Add(time.Duration(rng.IntN(90)) * time.Minute)
		rows = append(rows, querytest.History(keys, []string{"async", "timer"}[rng.IntN(2)], start, steps...)...)
	}
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	var batches [][]querytest.Row
	for len(rows) > 0 {
		k := min(len(rows), 30+rng.IntN(40))
		batches = append(batches, rows[:k])
		rows = rows[k:]
	}
	// Re-deliveries: a few batches again, as a collector retry would.
	for range 3 {
		batches = append(batches, batches[rng.IntN(len(batches))])
	}
	return batches
}

func open(t *testing.T, dsn string) driver.Conn {
	t.Helper()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func clickhouseNamed(name, v string) any { return clickhouse.Named(name, v) }
