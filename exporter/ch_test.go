package statustraceexporter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/exporter/internal/rows"
	"github.com/statustrace/statustrace/exporter/migrate"
	"github.com/statustrace/statustrace/internal/schema"
)

// Tests against the real engine (testkit/chtest). Data volumes are modest:
// the local engine runs one statement at a time.

// The exporter's INSERT columns and types are exactly the table's, less
// the two durations that it sends as duration_key since schema version 12
// (they stay for older writers, and default to 0).
func TestInsertColumnsMatchTable(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	if _, err := migrate.Up(context.Background(), db.Conn, migrate.Options{Database: db.Name}); err != nil {
		t.Fatal(err)
	}
	type column struct {
		Name string `ch:"name"`
		Type string `ch:"type"`
	}
	var cols []column
	err := db.Conn.Select(context.Background(), &cols,
		"SELECT name, type FROM system.columns WHERE database = ? AND table = ? AND default_kind NOT IN ('ALIAS', 'MATERIALIZED') ORDER BY position",
		db.Name, schema.Transitions)
	if err != nil {
		t.Fatal(err)
	}
	cols = slices.DeleteFunc(cols, func(c column) bool {
		return c.Name == schema.ColFromStateNS || c.Name == schema.ColEventNS
	})
	if len(cols) != len(rows.InsertColumns) {
		t.Fatalf("table has %d columns, the exporter inserts %d: %+v", len(cols), len(rows.InsertColumns), cols)
	}
	for i, c := range cols {
		if want := rows.InsertColumns[i]; c.Name != want.Name || c.Type != want.Type {
			t.Errorf("column %d: table %s %s, exporter %s %s", i, c.Name, c.Type, want.Name, want.Type)
		}
	}
}

// span_id is not stored for the plugin's spans: the schema recomputes it,
// and must get exactly the ID the plugin derives; other IDs are kept as sent.
func TestSpanIDDerivedBySchema(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	if _, err := migrate.Up(ctx, db.Conn, migrate.Options{Database: db.Name}); err != nil {
		t.Fatal(err)
	}
	type probe struct {
		rid      string
		seq      uint64
		override [8]byte
	}
	probes := []probe{
		{"req-1", 1, [8]byte{}}, {"a-much-longer-request-id-" + strings.Repeat("x", 200), 1 << 40, [8]byte{}},
		{"it's\\ é", 0, [8]byte{}}, {"req-2", 7, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}},
	}
	for _, p := range probes {
		err := db.Conn.Exec(ctx, "INSERT INTO "+schema.Transitions+" (tenant, request_id, seq, to_state, time, "+schema.ColSpanIDOverride+
			") VALUES ('t', {rid:String}, {seq:UInt64}, 'QUEUED', now64(9), {ov:FixedString(8)})",
			clickhouse.Named("rid", p.rid), clickhouse.Named("seq", fmt.Sprint(p.seq)), clickhouse.Named("ov", string(p.override[:])))
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := db.Conn.QueryRow(ctx, "SELECT "+schema.ColSpanID+" FROM "+schema.Transitions+" WHERE request_id = {rid:String}",
			clickhouse.Named("rid", p.rid)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		want := event.TransitionSpanID(p.rid, p.seq)
		if p.override != ([8]byte{}) {
			want = p.override
		}
		if got != string(want[:]) {
			t.Errorf("%q/%d: span_id %x, want %x", p.rid, p.seq, got, want)
		}
	}

	// The alias is the Go rule's SQL twin, all-zero rule included (no
	// request ID with an all-zero hash prefix can be found: the rule is
	// checked on its own below). ClickHouse stores the expression
	// reformatted: compare both formatted.
	var same uint8
	alias := "if(span_id_override != unhex('0000000000000000'), span_id_override, " + event.SQLTransitionSpanID("request_id", "seq") + ")"
	if err := db.Conn.QueryRow(ctx, "SELECT formatQuerySingleLine('SELECT ' || default_expression) = formatQuerySingleLine('SELECT ' || {want:String}) "+
		"FROM system.columns WHERE database = currentDatabase() AND table = {t:String} AND name = {c:String} AND default_kind = 'ALIAS'",
		clickhouse.Named("want", alias), clickhouse.Named("t", schema.Transitions), clickhouse.Named("c", schema.ColSpanID)).Scan(&same); err != nil {
		t.Fatal(err)
	}
	if same != 1 {
		t.Error("transitions.span_id is not the ALIAS event.SQLTransitionSpanID generates")
	}
	// The all-zero rule on the engine: as TransitionSpanID, an all-zero
	// hash prefix (invalid in OpenTelemetry) reads as ...01, never as zero
	// bytes, and any other ID as itself.
	for in, want := range map[[8]byte][8]byte{{}: {7: 1}, {1, 2, 3, 4, 5, 6, 7, 8}: {1, 2, 3, 4, 5, 6, 7, 8}, {7: 1}: {7: 1}} {
		var got string
		if err := db.Conn.QueryRow(ctx, "SELECT "+event.SQLNonZeroSpanID("{id:FixedString(8)}"), clickhouse.Named("id", string(in[:]))).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != string(want[:]) {
			t.Errorf("span ID %x reads as %x, want %x", in, got, want)
		}
	}
}

func TestSameBatchTwiceChangesNoCount(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	exp := startExporter(t, testConfig(db))
	rng := rand.New(rand.NewPCG(1, 2))
	ts := genEvents(rng, 40, time.Now().Add(-time.Hour), 30*time.Minute)

	deliver(t, exp, ts)
	first := snapshot(t, db)
	if first.Raw != uint64(len(ts)) || first.LastSeqs != uint64(len(ts)) || first.StatTransitions != uint64(len(ts)) || first.Events != 40 {
		t.Fatalf("after one delivery: %+v, want %d transitions of 40 events", first, len(ts))
	}
	deliver(t, exp, ts) // the same batch again, as a retry re-sends it
	if again := snapshot(t, db); again != first {
		t.Fatalf("same batch twice changed counts: %+v -> %+v", first, again)
	}
	// A duplicate that arrives re-batched with other data changes nothing either.
	deliver(t, exp, append(append([]transition{}, ts[len(ts)/3:len(ts)/2]...), ts[:5]...))
	if again := snapshot(t, db); again != first {
		t.Fatalf("re-batched duplicates changed counts: %+v -> %+v", first, again)
	}
	// Nor one that comes twice in one batch (one insert block: the
	// per-minute view keeps both hashes in that block's row, and readers
	// merge them into one).
	deliver(t, exp, append(append(append([]transition{}, ts[:5]...), ts[len(ts)-3:]...), ts[:5]...))
	if again := snapshot(t, db); again != first {
		t.Fatalf("duplicates within a batch changed counts: %+v -> %+v", first, again)
	}
	optimizeAll(t, db)
	if after := snapshot(t, db); after != first {
		t.Fatalf("counts changed after merges: %+v -> %+v", first, after)
	}
	if raw := count(t, db, "SELECT count() FROM "+q(db, "transitions")); raw != uint64(len(ts)) {
		t.Errorf("after OPTIMIZE FINAL the raw table holds %d rows, want %d", raw, len(ts))
	}
}

func TestFinishedBeforeRunningLeavesFinished(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	exp := startExporter(t, testConfig(db))
	now := time.Now().Add(-time.Minute)
	mk := func(seq uint64, from, to event.State, at time.Duration) transition {
		return transition{Transition: event.Transition{
			Keys: event.Keys{Tenant: "acme", Namespace: "ns", Function: "fn", Qualifier: "LATEST", RequestID: "req-ooo"},
			Seq:  seq, Attempt: 1, From: from, To: to, TimeUnixNano: now.Add(at).UnixNano(), Node: "n1",
		}}
	}
	queued := mk(1, event.StateNone, event.StateQueued, 0)
	running := mk(2, event.StateQueued, event.StateRunning, time.Second)
	finished := mk(3, event.StateRunning, event.StateFinished, 2*time.Second)

	// Each in its own insert (its own part), newest first.
	deliver(t, exp, []transition{finished})
	deliver(t, exp, []transition{running})
	deliver(t, exp, []transition{queued})
	check := func(when string) {
		got := selectEvents(t, db, eventsQuery, "events")
		if len(got) != 1 || got[0].State != "FINISHED" || got[0].StartTime != toMillis(queued.TimeUnixNano) || got[0].EndTime != toMillis(finished.TimeUnixNano) || got[0].LastSeq != 3 {
			t.Fatalf("%s: %+v, want FINISHED with start and end times", when, got)
		}
	}
	check("before merges")
	optimizeAll(t, db)
	check("after merges")
	// A late duplicate of RUNNING does not move it back either.
	deliver(t, exp, []transition{running})
	check("after a late duplicate")
}

// The materialized views agree with a brute-force recomputation, from the
// raw rows in SQL and from the generated data in Go, with shuffled,
// duplicated and randomly batched deliveries, before and after merges.
func TestViewsEqualBruteForce(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	exp := startExporter(t, testConfig(db))
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	ts := genEvents(rng, 150, time.Now().Add(-6*time.Hour), 5*time.Hour)
	for _, batch := range deliveries(rng, ts, 0.3) {
		deliver(t, exp, batch)
	}
	wantEvents, wantStats := expectEvents(ts), expectStats(ts)
	for _, phase := range []string{"before merges", "after OPTIMIZE FINAL"} {
		if phase != "before merges" {
			optimizeAll(t, db)
		}
		diffEvents(t, phase+": events view vs Go", selectEvents(t, db, eventsQuery, "events"), wantEvents)
		diffEvents(t, phase+": raw brute force vs Go", selectEvents(t, db, bruteEventsQuery, "transitions"), wantEvents)
		diffStats(t, phase+": stats view vs Go", selectStats(t, db, statsQuery, schema.Stats), wantStats)
		diffStats(t, phase+": raw brute force stats vs Go", selectStats(t, db, bruteStatsQuery, "transitions"), wantStats)
	}
}

// Rows older than the retention leave every table with OPTIMIZE FINAL; the
// retention in force is readable by the query side, which filters on it.
func TestRetentionDropsOldRows(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	cfg := testConfig(db)
	cfg.Retention = 48 * time.Hour
	exp := startExporter(t, cfg)
	// Keep background TTL merges from dropping the expired parts at once, so
	// that the cutoff filter is shown hiding rows that are still stored.
	for _, tbl := range []string{"transitions", "events", schema.Stats} {
		if err := db.Conn.Exec(context.Background(), "SYSTEM STOP TTL MERGES "+q(db, tbl)); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	old := genEvents(rng, 10, time.Now().Add(-5*24*time.Hour), time.Hour)
	for i := range old {
		old[i].RequestID = "old-" + old[i].RequestID
	}
	fresh := genEvents(rng, 10, time.Now().Add(-2*time.Hour), time.Hour)
	deliver(t, exp, fresh)
	// The exporter drops what is older than its retention before the
	// insert; a writer with a longer one (an operator lowered the
	// retention while old parts wait for their TTL merge) stored these.
	longer := testConfig(db)
	longer.CreateSchema, longer.Retention = false, 10*24*time.Hour
	deliver(t, startExporter(t, longer), old)

	visible := func(table, timeCol string) uint64 {
		return count(t, db, "SELECT count() FROM "+q(db, table)+" WHERE "+timeCol+" >= "+
			strings.ReplaceAll(schema.RetentionCutoffExpr, "FROM "+schema.Settings, "FROM "+q(db, schema.Settings)))
	}
	// Before any merge the old rows are stored but filtered out by the cutoff.
	if n := count(t, db, "SELECT count() FROM "+q(db, "transitions")+" WHERE startsWith(request_id, 'old-')"); n != uint64(len(old)) {
		t.Fatalf("old rows stored: %d, want %d", n, len(old))
	}
	if n := visible("transitions", "time"); n != uint64(len(fresh)) {
		t.Errorf("visible transitions %d, want only the %d fresh ones", n, len(fresh))
	}
	freshEvents := map[string]bool{}
	for _, tr := range fresh {
		freshEvents[tr.RequestID] = true
	}
	if n := count(t, db, "SELECT count() FROM (SELECT request_id FROM "+q(db, "events")+" GROUP BY tenant, namespace, function, qualifier, request_id HAVING max(last_time) >= "+
		strings.ReplaceAll(schema.RetentionCutoffExpr, "FROM "+schema.Settings, "FROM "+q(db, schema.Settings))+")"); n != uint64(len(freshEvents)) {
		t.Errorf("visible events %d, want %d", n, len(freshEvents))
	}
	for _, tbl := range []string{"transitions", "events", schema.Stats} {
		if err := db.Conn.Exec(context.Background(), "SYSTEM START TTL MERGES "+q(db, tbl)); err != nil {
			t.Fatal(err)
		}
	}
	optimizeAll(t, db)
	if n := count(t, db, "SELECT count() FROM "+q(db, "transitions")+" WHERE startsWith(request_id, 'old-')"); n != 0 {
		t.Errorf("%d expired transitions left after OPTIMIZE FINAL", n)
	}
	if n := count(t, db, "SELECT count() FROM "+q(db, "events")+" WHERE startsWith(request_id, 'old-')"); n != 0 {
		t.Errorf("%d expired events rows left after OPTIMIZE FINAL", n)
	}
	if n := count(t, db, "SELECT count() FROM "+q(db, schema.Stats)+" WHERE bucket < now() - INTERVAL 3 DAY"); n != 0 {
		t.Errorf("%d expired stats rows left after OPTIMIZE FINAL", n)
	}
	if n := count(t, db, "SELECT count() FROM "+q(db, "transitions")); n != uint64(len(fresh)) {
		t.Errorf("fresh transitions %d, want %d", n, len(fresh))
	}
	var ret string
	if err := db.Conn.QueryRow(context.Background(), "SELECT toString("+
		strings.ReplaceAll(schema.RetentionSecondsExpr, "FROM "+schema.Settings, "FROM "+q(db, schema.Settings))+")").Scan(&ret); err != nil {
		t.Fatal(err)
	}
	if ret != "172800" {
		t.Errorf("retention setting %s, want 172800", ret)
	}
}

// Malformed status spans beside good ones: the good rows land, the batch
// does not fail.
func TestBadSpansDoNotFailTheBatch(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	exp := startExporter(t, testConfig(db))
	rng := rand.New(rand.NewPCG(5, 6))
	good := genEvents(rng, 5, time.Now().Add(-time.Hour), time.Minute)
	td := tracesOf(good)
	ss := td.ResourceSpans().At(0).ScopeSpans().At(0)
	bad := []func(a pcommon.Map){
		func(a pcommon.Map) { a.Remove(event.AttrTenant) },
		func(a pcommon.Map) { a.PutStr(event.AttrSeq, "many") },
		func(a pcommon.Map) { a.PutStr(event.AttrToState, "EXPLODED") },
		func(a pcommon.Map) { a.PutStr(event.AttrRequestID, strings.Repeat("x", 5000)) },
	}
	for i, mutate := range bad {
		b := good[i]
		b.RequestID = "bad-" + b.RequestID
		putSpan(ss, b, event.RoleTransition)
		mutate(ss.Spans().At(ss.Spans().Len() - 1).Attributes())
	}
	// Repaired, not dropped: a 1 MB error message with invalid UTF-8.
	huge := good[0]
	huge.RequestID, huge.Seq = "huge-msg", 1
	huge.ErrorMessage = strings.Repeat("\xff界", 1<<18)
	putSpan(ss, huge, event.RoleTransition)

	if err := exp.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatalf("batch with bad spans failed: %v", err)
	}
	if n := count(t, db, "SELECT count() FROM "+q(db, "transitions")); n != uint64(len(good)+1) {
		t.Fatalf("%d rows, want the %d good ones and the repaired one", n, len(good)+1)
	}
	var msgLen uint64
	var valid uint8
	err := db.Conn.QueryRow(context.Background(), "SELECT length(error_message), isValidUTF8(error_message) FROM "+
		q(db, "transitions")+" WHERE request_id = 'huge-msg'").Scan(&msgLen, &valid)
	if err != nil {
		t.Fatal(err)
	}
	if msgLen > event.MaxErrorMessageBytes || msgLen < event.MaxErrorMessageBytes-4 || valid != 1 {
		t.Errorf("stored error message: %d bytes, valid UTF-8 %d", msgLen, valid)
	}
}

// Looking one event up reads a bounded number of rows, whatever the table
// size: the raw table's primary key starts with (tenant, request_id).
func TestLookupUsesPrimaryKey(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	exp := startExporter(t, testConfig(db))
	rng := rand.New(rand.NewPCG(8, 9))
	ts := genEvents(rng, 100, time.Now().Add(-time.Hour), 30*time.Minute)
	deliver(t, exp, ts)
	var plan []struct {
		Explain string `ch:"explain"`
	}
	err := db.Conn.Select(context.Background(), &plan, "EXPLAIN indexes = 1 SELECT * FROM "+q(db, "transitions")+
		" WHERE tenant = ? AND request_id = ?", ts[0].Tenant, ts[0].RequestID)
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, p := range plan {
		text = append(text, p.Explain)
	}
	joined := strings.Join(text, "\n")
	if !strings.Contains(joined, "PrimaryKey") || !strings.Contains(joined, "request_id") {
		t.Errorf("lookup does not use the primary key on request_id:\n%s", joined)
	}
	// The events table is ordered for lists by function; its lookups go
	// through the request_id bloom filter.
	plan = nil
	err = db.Conn.Select(context.Background(), &plan, "EXPLAIN indexes = 1 SELECT * FROM "+q(db, "events")+
		" WHERE tenant = ? AND request_id = ?", ts[0].Tenant, ts[0].RequestID)
	if err != nil {
		t.Fatal(err)
	}
	text = text[:0]
	for _, p := range plan {
		text = append(text, p.Explain)
	}
	if joined := strings.Join(text, "\n"); !strings.Contains(joined, "idx_request_id") {
		t.Errorf("events lookup does not use the request_id bloom filter:\n%s", joined)
	}
}
