package migrate

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/testkit/chtest"
)

// newDB gives the test a fresh database on the real engine.
func newDB(t *testing.T) *chtest.DB {
	t.Helper()
	return chtest.New(t)
}

func tableDDL(t *testing.T, db *chtest.DB, table string) string {
	t.Helper()
	var ddl string
	err := db.Conn.QueryRow(context.Background(),
		"SELECT create_table_query FROM system.tables WHERE database = ? AND name = ?", db.Name, table).Scan(&ddl)
	if err != nil {
		t.Fatalf("ddl of %s: %v", table, err)
	}
	return ddl
}

func TestUpOnEngine(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	opts := Options{Database: db.Name}
	res, err := Up(ctx, db.Conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != len(builtin) || !res.RetentionChanged {
		t.Fatalf("first Up: %+v", res)
	}
	for _, tbl := range []string{schema.Transitions, schema.Events, schema.Stats, schema.Settings, schema.Migrations, schema.MVEvents, schema.MVStats} {
		tableDDL(t, db, tbl) // exists
	}
	res, err = Up(ctx, db.Conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 0 || res.RetentionChanged || res.Version != uint32(len(builtin)) {
		t.Fatalf("re-running Up must be a no-op: %+v", res)
	}
	applied, latest, err := Status(ctx, db.Conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(builtin) || latest != uint32(len(builtin)) || applied[0].Checksum != builtin[0].Checksum() {
		t.Fatalf("status: %+v latest %d", applied, latest)
	}
	var rowsInTable uint64
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM "+opts.qualifiedFor(schema.Migrations)+" FINAL").Scan(&rowsInTable); err != nil {
		t.Fatal(err)
	}
	if rowsInTable != uint64(len(builtin)) {
		t.Errorf("%d recorded versions, want %d", rowsInTable, len(builtin))
	}
}

// maxInsertZSTDLevel is the highest ZSTD level a column of the schema may
// use. Every insert compresses a small block per column, and from level 8
// on zstd searches harder for each block: seven columns at ZSTD(9) made a
// 10,000-row insert into transitions 29 ms instead of 21 at ZSTD(6), for
// 0.07 B per transition on disk (migration 13, exporter/README.md).
const maxInsertZSTDLevel = 7

// TestCodecLevelsOnEngine checks every column the migrations leave in
// place, on the engine's own account of them (system.columns), so a
// future migration cannot bring a slow level back.
func TestCodecLevelsOnEngine(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	if _, err := Up(ctx, db.Conn, Options{Database: db.Name}); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Conn.Query(ctx, "SELECT table, name, compression_codec FROM system.columns WHERE database = ? AND compression_codec != ''", db.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	levels := regexp.MustCompile(`ZSTD\((\d+)\)`)
	checked := 0
	for rows.Next() {
		var table, column, codec string
		if err := rows.Scan(&table, &column, &codec); err != nil {
			t.Fatal(err)
		}
		for _, m := range levels.FindAllStringSubmatch(codec, -1) {
			checked++
			if level, _ := strconv.Atoi(m[1]); level > maxInsertZSTDLevel {
				t.Errorf("%s.%s: %s: ZSTD above level %d slows every insert", table, column, codec, maxInsertZSTDLevel)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no column with a ZSTD codec: the query read nothing")
	}
}

func TestRetentionChangeOnEngine(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	if _, err := Up(ctx, db.Conn, Options{Database: db.Name}); err != nil {
		t.Fatal(err)
	}
	if ddl := tableDDL(t, db, schema.Transitions); !strings.Contains(ddl, "toIntervalSecond(259200)") {
		t.Fatalf("default TTL missing: %s", ddl)
	}
	res, err := Up(ctx, db.Conn, Options{Database: db.Name, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !res.RetentionChanged {
		t.Fatal("retention change not applied")
	}
	for _, tbl := range []string{schema.Transitions, schema.Events, schema.Stats} {
		if ddl := tableDDL(t, db, tbl); !strings.Contains(ddl, "toIntervalSecond(86400)") || strings.Contains(ddl, "259200") || !strings.Contains(ddl, "ttl_only_drop_parts = 1") {
			t.Errorf("%s TTL not changed: %s", tbl, ddl)
		}
	}
	var v string
	err = db.Conn.QueryRow(ctx, "SELECT argMax(value, updated_at) FROM "+Options{Database: db.Name}.qualifiedFor(schema.Settings)+
		" WHERE name = ?", schema.SettingRetentionSeconds).Scan(&v)
	if err != nil || v != "86400" {
		t.Fatalf("retention setting %q, %v", v, err)
	}
}

func TestChangedMigrationRefusedOnEngine(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	if _, err := Up(ctx, db.Conn, Options{Database: db.Name}); err != nil {
		t.Fatal(err)
	}
	changed := Migrations()
	changed[0].Statements = append([]string(nil), changed[0].Statements...)
	changed[0].Statements[0] = strings.Replace(changed[0].Statements[0], "ORDER BY (tenant, request_id, seq)", "ORDER BY (tenant, request_id, seq, attempt)", 1)
	if _, err := up(ctx, db.Conn, Options{Database: db.Name}, changed); err == nil || !strings.Contains(err.Error(), "must not change") {
		t.Fatalf("want the changed migration refused, got %v", err)
	}
	// The right way: a new version that alters the column.
	next := append(Migrations(), Migration{Version: uint32(len(builtin) + 1), Name: "widen attempt",
		Statements: []string{"ALTER TABLE {{table \"transitions\"}}{{.OnCluster}} MODIFY COLUMN attempt UInt64"}})
	res, err := up(ctx, db.Conn, Options{Database: db.Name}, next)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 1 || res.Version != uint32(len(next)) {
		t.Fatalf("new version: %+v", res)
	}
	if ddl := tableDDL(t, db, schema.Transitions); !strings.Contains(ddl, "`attempt` UInt64") {
		t.Errorf("column not altered: %s", ddl)
	}
	// This binary (without the new version) now refuses the newer database.
	if _, err := Up(ctx, db.Conn, Options{Database: db.Name}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("want a newer-schema error, got %v", err)
	}
}

// A database at version 1 holding events is brought to version 2 in place:
// the rows stay as they were (a codec change rewrites nothing), and the view
// writes whole milliseconds from then on, in the same DateTime64(9) columns.
func TestUpgradeFromVersion1OnEngine(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	opts := Options{Database: db.Name}
	if _, err := up(ctx, db.Conn, opts, builtin[:1]); err != nil {
		t.Fatal(err)
	}
	insert := func(req string, seq uint64, state string, at string) {
		t.Helper()
		err := db.Conn.Exec(ctx, "INSERT INTO "+opts.qualifiedFor(schema.Transitions)+
			" (tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state, time) VALUES ('t', 'ns', 'fn', 'LATEST', ?, ?, 1, '', ?, toDateTime64(?, 9, 'UTC'))",
			req, seq, state, at)
		if err != nil {
			t.Fatal(err)
		}
	}
	// Times within the retention, so that no TTL merge can drop them.
	day := time.Now().UTC().Add(-24 * time.Hour).Format(time.DateOnly)
	insert("before", 1, "QUEUED", day+" 10:00:00.123456789")
	insert("before", 2, "FINISHED", day+" 10:00:01.987654321")

	// To version 2 only: version 3 is TestUpgradeFromVersion2OnEngine's.
	res, err := up(ctx, db.Conn, opts, builtin[:2])
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 1 || res.Applied[0] != 2 {
		t.Fatalf("upgrade applied %v, want version 2", res.Applied)
	}
	insert("after", 1, "QUEUED", day+" 11:00:00.000999999")

	type row struct {
		RequestID string `ch:"request_id"`
		First     string `ch:"first"`
		Start     string `ch:"start"`
		End       string `ch:"end"`
		Last      string `ch:"last"`
	}
	var got []row
	err = db.Conn.Select(ctx, &got, "SELECT request_id, toString(min(first_time)) AS first, toString(min(start_time)) AS start, ifNull(toString(max(end_time)), 'NULL') AS end, toString(max(last_time)) AS last FROM "+
		opts.qualifiedFor(schema.Events)+" GROUP BY request_id ORDER BY request_id")
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"after", day + " 11:00:00.000000000", day + " 11:00:00.000000000", "NULL", day + " 11:00:00.000000000"},
		{"before", day + " 10:00:00.123456789", day + " 10:00:00.123456789", day + " 10:00:01.987654321", day + " 10:00:01.987654321"},
	}
	if len(got) != len(want) {
		t.Fatalf("events after upgrade: %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("events row %d after upgrade: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// conflictRows inserts, each in its own part, two rows that claim seq 2 of
// one event with different states: FINISHED first, then a late RUNNING.
func conflictRows(t *testing.T, db *chtest.DB, opts Options, day string) {
	t.Helper()
	ctx := context.Background()
	for _, r := range []struct {
		seq   uint64
		state string
		at    string
	}{{1, "QUEUED", "10:00:00"}, {2, "FINISHED", "10:00:02"}, {2, "RUNNING", "10:00:01"}} {
		err := db.Conn.Exec(ctx, "INSERT INTO "+opts.qualifiedFor(schema.Transitions)+
			" (tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state, time) VALUES ('t', 'ns', 'fn', 'LATEST', 'conflict', ?, 1, '', ?, toDateTime64(?, 9, 'UTC'))",
			r.seq, r.state, day+" "+r.at)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// stateAfterMerge merges everything and returns the state transitions
// keeps for seq 2 of the conflicting event, and the one events shows.
func stateAfterMerge(t *testing.T, db *chtest.DB, opts Options) (transitions, events string) {
	t.Helper()
	ctx := context.Background()
	for _, tbl := range []string{schema.Transitions, schema.Events} {
		if err := db.Conn.Exec(ctx, "OPTIMIZE TABLE "+opts.qualifiedFor(tbl)+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Conn.QueryRow(ctx, "SELECT arrayStringConcat(groupArray(to_state), ',') FROM "+opts.qualifiedFor(schema.Transitions)+
		" WHERE request_id = 'conflict' AND seq = 2").Scan(&transitions); err != nil {
		t.Fatal(err)
	}
	if err := db.Conn.QueryRow(ctx, "SELECT "+event.SQLStateOfKey("max(state_key)")+" FROM "+opts.qualifiedFor(schema.Events)+
		" WHERE request_id = 'conflict' GROUP BY request_id").Scan(&events); err != nil {
		t.Fatal(err)
	}
	return transitions, events
}

// Same seq, different state: after merges, transitions keeps the row the
// events view counts (the higher state rank), not the last one inserted.
func TestSameSeqConflictAgreesAfterMerge(t *testing.T) {
	db := newDB(t)
	opts := Options{Database: db.Name}
	if _, err := Up(context.Background(), db.Conn, opts); err != nil {
		t.Fatal(err)
	}
	conflictRows(t, db, opts, time.Now().UTC().Add(-time.Hour).Format(time.DateOnly))
	if tr, ev := stateAfterMerge(t, db, opts); tr != "FINISHED" || ev != "FINISHED" {
		t.Fatalf("after merges transitions keeps %q and events shows %q, want FINISHED in both", tr, ev)
	}
}

// A database written by binaries before schema version 3 (versions 1 and 2
// recorded with their template checksums) is upgraded in place: every row
// is kept, the materialized views keep being fed, the checksums are
// re-recorded, and same-seq conflicts resolve as in events from then on.
func TestUpgradeFromVersion2OnEngine(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	opts := Options{Database: db.Name}
	if _, err := up(ctx, db.Conn, opts, builtin[:2]); err != nil {
		t.Fatal(err)
	}
	if err := db.Conn.Exec(ctx, "TRUNCATE TABLE "+opts.qualifiedFor(schema.Migrations)); err != nil {
		t.Fatal(err)
	}
	for _, m := range builtin[:2] { // as the older binary recorded them
		if err := db.Conn.Exec(ctx, "INSERT INTO "+opts.qualifiedFor(schema.Migrations)+
			" (version, name, checksum, applied_at) VALUES (?, ?, ?, now64(3) - 60)", m.Version, m.Name, released[m.Version].legacy); err != nil {
			t.Fatal(err)
		}
	}
	// The old engine would collapse the conflict below on any merge, keeping
	// the last row inserted: keep its parts apart until the upgrade.
	if err := db.Conn.Exec(ctx, "SYSTEM STOP MERGES "+opts.qualifiedFor(schema.Transitions)); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Add(-time.Hour).Format(time.DateOnly)
	yesterday := time.Now().UTC().Add(-25 * time.Hour).Format(time.DateOnly)
	conflictRows(t, db, opts, today)
	for i := range 50 {
		day := today
		if i%2 == 0 {
			day = yesterday
		}
		if err := db.Conn.Exec(ctx, "INSERT INTO "+opts.qualifiedFor(schema.Transitions)+
			" (tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state, time) VALUES ('t', 'ns', 'fn', 'LATEST', ?, 1, 1, '', 'QUEUED', toDateTime64(?, 9, 'UTC'))",
			fmt.Sprintf("r-%02d", i), day+" 09:00:00"); err != nil {
			t.Fatal(err)
		}
	}
	// What must survive: every (event, seq). (Where parts cannot be moved,
	// the rows are copied, and a copy collapses the conflict at once.)
	keysQuery := "SELECT count() FROM (SELECT DISTINCT request_id, seq FROM " + opts.qualifiedFor(schema.Transitions) + ")"
	keysBefore := countOf(t, db, keysQuery)

	res, err := Up(ctx, db.Conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != len(builtin)-2 || res.Applied[0] != 3 {
		t.Fatalf("upgrade applied %v, want 3 and every later version", res.Applied)
	}
	if n := countOf(t, db, keysQuery); n != keysBefore {
		t.Errorf("%d transitions (event, seq) after the upgrade, %d before", n, keysBefore)
	}
	if ddl := tableDDL(t, db, schema.Transitions); !strings.Contains(ddl, "ReplacingMergeTree(state_rank)") {
		t.Errorf("transitions not rebuilt with the version column: %s", ddl)
	}
	if n := countOf(t, db, "SELECT count() FROM system.tables WHERE database = '"+db.Name+"' AND name IN ('transitions_v3_new', 'transitions_v2_old')"); n != 0 {
		t.Errorf("%d leftover tables", n)
	}
	applied, _, err := Status(ctx, db.Conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range applied {
		if a.Checksum != builtin[a.Version-1].Checksum() {
			t.Errorf("version %d still recorded with checksum %.12s", a.Version, a.Checksum)
		}
	}
	// The views follow the rebuilt table.
	if err := db.Conn.Exec(ctx, "INSERT INTO "+opts.qualifiedFor(schema.Transitions)+
		" (tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state, time) VALUES ('t', 'ns', 'fn', 'LATEST', 'after', 1, 1, '', 'QUEUED', now64(9))"); err != nil {
		t.Fatal(err)
	}
	if n := countOf(t, db, "SELECT count() FROM "+opts.qualifiedFor(schema.Events)+" WHERE request_id = 'after'"); n != 1 {
		t.Errorf("events has %d rows of an event inserted after the upgrade", n)
	}
	if tr, ev := stateAfterMerge(t, db, opts); tr != "FINISHED" || ev != "FINISHED" {
		t.Errorf("after the upgrade and merges transitions keeps %q and events shows %q, want FINISHED in both", tr, ev)
	}
	if n := countOf(t, db, "SELECT count() FROM (SELECT request_id FROM "+opts.qualifiedFor(schema.Transitions)+" FINAL WHERE startsWith(request_id, 'r-'))"); n != 50 {
		t.Errorf("%d of 50 events left after merges", n)
	}
}

// An upgrade interrupted half-way (swapped and renamed, parts not moved
// yet: a crash, a timeout) is finished by the next Up without losing rows.
func TestInterruptedUpgradeResumes(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	opts := Options{Database: db.Name}
	if _, err := up(ctx, db.Conn, opts, builtin[:2]); err != nil {
		t.Fatal(err)
	}
	conflictRows(t, db, opts, time.Now().UTC().Add(-time.Hour).Format(time.DateOnly))
	o, err := opts.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := o.renderAll(builtin)
	if err != nil {
		t.Fatal(err)
	}
	m3 := rs[2]
	rename := -1
	for i, q := range m3.SQL {
		if strings.HasPrefix(q, "RENAME TABLE") {
			rename = i
		}
	}
	for i := 0; i <= rename; i++ { // up to the rename, then "crash"
		if err := o.exec(ctx, db.Conn, m3.SQL[i], m3.SkipIf[i], m3.Each[i]); err != nil {
			t.Fatalf("statement %d: %v", i+1, err)
		}
	}
	if n := countOf(t, db, "SELECT count() FROM "+opts.qualifiedFor(schema.Transitions)); n != 0 {
		t.Fatalf("the swapped-in table holds %d rows before the move", n)
	}
	res, err := Up(ctx, db.Conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != len(builtin)-2 || res.Applied[0] != 3 {
		t.Fatalf("resumed upgrade applied %v", res.Applied)
	}
	if n := countOf(t, db, "SELECT count() FROM (SELECT DISTINCT seq FROM "+opts.qualifiedFor(schema.Transitions)+")"); n != 2 {
		t.Errorf("%d of the 2 transitions left after the resumed upgrade", n)
	}
	if tr, ev := stateAfterMerge(t, db, opts); tr != "FINISHED" || ev != "FINISHED" {
		t.Errorf("after the resumed upgrade transitions keeps %q and events shows %q, want FINISHED", tr, ev)
	}
}

func countOf(t *testing.T, db *chtest.DB, query string) uint64 {
	t.Helper()
	var n uint64
	if err := db.Conn.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// Several collectors upgrading one database at once (each retrying a
// failed Up, as the exporter does) all end on version 3 without losing a
// row: the guards and the final check keep the rebuild from being undone.
func TestConcurrentUpgradeKeepsRows(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	opts := Options{Database: db.Name}
	if _, err := up(ctx, db.Conn, opts, builtin[:2]); err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Add(-time.Hour).Format(time.DateOnly)
	for i := range 20 {
		if err := db.Conn.Exec(ctx, "INSERT INTO "+opts.qualifiedFor(schema.Transitions)+
			" (tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state, time) VALUES ('t', 'ns', 'fn', 'LATEST', ?, 1, 1, '', 'QUEUED', toDateTime64(?, 9, 'UTC'))",
			fmt.Sprintf("r-%02d", i), day+" 09:00:00"); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			var err error
			for range 40 {
				if _, err = Up(ctx, db.Conn, opts); err == nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("a migrator never finished: %v", err)
		}
	}
	if ddl := tableDDL(t, db, schema.Transitions); !strings.Contains(ddl, "ReplacingMergeTree(state_rank)") {
		t.Errorf("transitions not rebuilt: %s", ddl)
	}
	if n := countOf(t, db, "SELECT count() FROM "+opts.qualifiedFor(schema.Transitions)+" FINAL"); n != 20 {
		t.Errorf("%d of 20 rows after concurrent upgrades", n)
	}
}

// A live lock makes Up wait (and give up when its context ends, to be
// retried); a lock whose holder's lease ended is taken over.
func TestMigrationLockOnEngine(t *testing.T) {
	db := newDB(t)
	opts := Options{Database: db.Name}
	if err := db.Conn.Exec(context.Background(), "CREATE DATABASE IF NOT EXISTS "+quote(db.Name)); err != nil {
		t.Fatal(err)
	}
	hold := func(lease time.Time) {
		t.Helper()
		_ = db.Conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+opts.qualifiedFor(lockTable))
		if err := db.Conn.Exec(context.Background(), fmt.Sprintf("CREATE TABLE %s (held UInt8) ENGINE = Memory COMMENT 'other %d'",
			opts.qualifiedFor(lockTable), lease.Unix())); err != nil {
			t.Fatal(err)
		}
	}
	hold(time.Now().Add(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := Up(ctx, db.Conn, opts); !errors.Is(err, errLockHeld) {
		t.Fatalf("with the lock held: %v, want errLockHeld", err)
	}
	hold(time.Now().Add(-time.Second)) // its holder died
	res, err := Up(context.Background(), db.Conn, opts)
	if err != nil {
		t.Fatalf("a stale lock was not taken over: %v", err)
	}
	if res.Version != uint32(len(builtin)) {
		t.Fatalf("version %d", res.Version)
	}
	if n := countOf(t, db, "SELECT count() FROM system.tables WHERE database = '"+db.Name+"' AND name LIKE 'schema_migrations_lock%'"); n != 0 {
		t.Errorf("%d lock tables left", n)
	}
}

// Migration 6 moves the events table's current state, last error and node
// from argMax states to plain maxima: rows written before it (read through
// the new columns' DEFAULT) and after it answer together, before and after
// merges, as the argMax columns did.
func TestUpgradeFromVersion5OnEngine(t *testing.T) { // and on to 9
	db := newDB(t)
	ctx := context.Background()
	opts := Options{Database: db.Name}
	if _, err := up(ctx, db.Conn, opts, builtin[:5]); err != nil {
		t.Fatal(err)
	}
	// No background merge may fold the old parts into new ones before
	// the reads (migration 9 must store their columns itself). Merges run
	// again for migration 9: its mutation waits for them.
	if err := db.Conn.Exec(ctx, "SYSTEM STOP MERGES "+opts.qualifiedFor(schema.Events)); err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Add(-24 * time.Hour).Format(time.DateOnly)
	insert := func(req string, seq uint64, state, node, code, msg, at string) {
		t.Helper()
		err := db.Conn.Exec(ctx, "INSERT INTO "+opts.qualifiedFor(schema.Transitions)+
			" (tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state, time, node, error_code, error_message)"+
			" VALUES ('t', 'ns', 'fn', '', ?, ?, 1, '', ?, toDateTime64(?, 9, 'UTC'), ?, ?, ?)",
			req, seq, state, day+" "+at, node, code, msg)
		if err != nil {
			t.Fatal(err)
		}
	}
	// Before: each insert is a part of its own, as separate batches are.
	insert("old", 1, "QUEUED", "a", "", "", "10:00:00")
	insert("old", 2, "RUNNING", "a", "", "", "10:00:01")
	insert("old", 3, "RETRYING", "a", "E1", "m1", "10:00:02")
	insert("mixed", 1, "QUEUED", "a", "", "", "10:00:00")
	insert("olderr", 1, "QUEUED", "a", "", "", "10:00:00")
	insert("olderr", 2, "FAILED", "a", "E3", "m3", "10:00:01")
	insert("errthenok", 1, "QUEUED", "a", "", "", "10:00:00")
	insert("errthenok", 2, "RETRYING", "a", "E4", "m4", "10:00:01")

	res, err := up(ctx, db.Conn, opts, builtin[:6])
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 1 || res.Applied[0] != 6 {
		t.Fatalf("upgrade applied %v, want version 6", res.Applied)
	}
	insert("mixed", 2, "RUNNING", "b", "", "", "10:00:01")
	insert("mixed", 3, "FAILED", "b", "E2", "m2", "10:00:02")
	insert("new", 1, "QUEUED", "c", "", "", "10:00:00")
	insert("new", 2, "FINISHED", "c", "", "", "10:00:01")
	insert("new", 2, "RUNNING", "c", "", "", "10:00:00.5") // a late report of the same seq: the terminal one stays
	insert("errthenok", 3, "RUNNING", "b", "", "", "10:00:02")
	insert("errthenok", 4, "FINISHED", "b", "", "", "10:00:03")

	want := []string{
		"errthenok FINISHED 4 E4 m4 b",
		"mixed FAILED 3 E2 m2 b",
		"new FINISHED 2   c",
		"old RETRYING 3 E1 m1 a",
		"olderr FAILED 2 E3 m3 a",
	}
	read := func(when string) {
		t.Helper()
		var got []string
		rows, err := db.Conn.Query(ctx, "SELECT concat(request_id, ' ', "+event.SQLStateOfKey("max(state_key)")+", ' ', toString(max(last_seq)), ' ', "+
			"tupleElement(max(error_at), 3), ' ', tupleElement(max(error_at), 4), ' ', tupleElement(max(node_at), 2)) FROM "+
			opts.qualifiedFor(schema.Events)+" GROUP BY tenant, namespace, function, qualifier, request_id ORDER BY request_id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("events %s:\n%s\nwant:\n%s", when, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	read("before merges")
	// Migration 9 stores the new columns in the parts written before 6
	// (still unmerged here) and drops the argMax columns they read from.
	// (On 26.7 the ALTER that removes the defaults rewrites such parts with
	// the old default too, so this passes without the MATERIALIZE; but until
	// that mutation ends, a reader would see zeros in them. The MATERIALIZE,
	// waited for, closes that window.)
	if _, err := up(ctx, db.Conn, opts, builtin[:8]); err != nil {
		t.Fatal(err)
	}
	if err := db.Conn.Exec(ctx, "SYSTEM START MERGES "+opts.qualifiedFor(schema.Events)); err != nil {
		t.Fatal(err)
	}
	if _, err := up(ctx, db.Conn, opts, builtin[:9]); err != nil {
		t.Fatal(err)
	}
	read("after migration 9")
	for _, col := range []string{schema.ColState, schema.ColLastErrorCode, schema.ColLastErrorMessage, schema.ColLastNode} {
		if n := countOf(t, db, "SELECT count() FROM system.columns WHERE database = '"+db.Name+"' AND table = 'events' AND name = '"+col+"'"); n != 0 {
			t.Errorf("events.%s still exists after migration 9", col)
		}
	}
	if err := db.Conn.Exec(ctx, "OPTIMIZE TABLE "+opts.qualifiedFor(schema.Events)+" FINAL"); err != nil {
		t.Fatal(err)
	}
	read("after merges")
}

// Migration 7 moves the counts and the duration digests into one table and
// rebuilds it from transitions. Against a database left at version 6 and
// fed the same rows: every count and histogram read from stats_minute and
// durations_minute there reads the same from transitions_minute here, after
// the backfill, after a re-delivery of the old rows and after new rows
// through the view, before and after merges; the old tables are gone.
func TestUpgradeFromVersion6OnEngine(t *testing.T) {
	ctx := context.Background()
	db, ref := newDB(t), newDB(t)
	opts, refOpts := Options{Database: db.Name}, Options{Database: ref.Name}
	for _, d := range []struct {
		db   *chtest.DB
		opts Options
	}{{db, opts}, {ref, refOpts}} {
		if _, err := up(ctx, d.db.Conn, d.opts, builtin[:6]); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Now().UTC().Add(-24 * time.Hour).Format(time.DateOnly)
	type row struct {
		req           string
		seq           uint64
		from, to      string
		code, at      string
		stepMS, ageMS uint64
	}
	old := []row{
		{"a", 1, "", "QUEUED", "", "10:00:00", 0, 0},
		{"a", 2, "QUEUED", "RUNNING", "", "10:00:01", 1000, 0},
		{"a", 3, "RUNNING", "FINISHED", "", "10:00:03", 2000, 3000},
		{"b", 1, "", "QUEUED", "", "10:00:00", 0, 0},
		{"b", 2, "QUEUED", "RUNNING", "", "10:00:00.5", 500, 0},
		{"b", 3, "RUNNING", "RETRYING", "E1", "10:00:01", 500, 0},
		{"b", 4, "RETRYING", "RUNNING", "", "10:01:01", 60000, 0},
		{"b", 5, "RUNNING", "FAILED", "E2", "10:01:02", 1000, 62000},
		{"c", 1, "", "QUEUED", "", "10:02:00", 0, 0},
		{"c", 2, "QUEUED", "RUNNING", "", "10:02:00.01", 0, 0}, // duration unknown (0): counted, no digest
	}
	fresh := []row{{"d", 1, "", "QUEUED", "", "10:00:00", 0, 0}, {"d", 2, "QUEUED", "RUNNING", "", "10:00:02", 2000, 0}}
	insert := func(d *chtest.DB, o Options, rs ...row) {
		t.Helper()
		for _, r := range rs {
			err := d.Conn.Exec(ctx, "INSERT INTO "+o.qualifiedFor(schema.Transitions)+
				" (tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state, time, error_code, from_state_ns, event_ns)"+
				" VALUES ('t', 'ns', 'fn', '', ?, ?, 1, ?, ?, toDateTime64(?, 9, 'UTC'), ?, ?, ?)",
				r.req, r.seq, r.from, r.to, day+" "+r.at, r.code, r.stepMS*1e6, r.ageMS*1e6)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	lines := func(d *chtest.DB, query string) string {
		t.Helper()
		rows, err := d.Conn.Query(ctx, query)
		if err != nil {
			t.Fatalf("%v\n%s", err, query)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return strings.Join(out, "\n")
	}
	stats := func(table, n string) string {
		return "SELECT concat(toString(bucket), ' ', to_state, ' ', error_code, ' ', toString(" + n + ")) FROM " +
			table + " GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code ORDER BY bucket, to_state, error_code"
	}
	want := func() (string, string) {
		t.Helper()
		s := lines(ref, stats(refOpts.qualifiedFor(schema.StatsV1), "uniqExactMerge(transitions)"))
		d := lines(ref, "SELECT concat(kind, ' ', toString(uniqExactMapMerge(digest))) FROM "+refOpts.qualifiedFor(schema.DurationsV4)+" GROUP BY kind ORDER BY kind")
		return s, d
	}
	newStats := stats(opts.qualifiedFor(schema.Stats), "length(maxMap(transitions).1)")
	newDigests := "SELECT concat(part.1, ' ', toString(sumMap(map(part.2, n)))) FROM (SELECT k, count() AS n FROM (SELECT maxMap(transitions).2 AS keys FROM " +
		opts.qualifiedFor(schema.Stats) + " GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code) ARRAY JOIN keys AS k GROUP BY k) ARRAY JOIN " +
		schema.DurationPartsExpr("k") + " AS part GROUP BY part.1 ORDER BY part.1"
	check := func(when string) {
		t.Helper()
		wantStats, wantDigests := want()
		if got := lines(db, newStats); got != wantStats {
			t.Errorf("counts %s:\n%s\nwant (version 6):\n%s", when, got, wantStats)
		}
		if got := lines(db, newDigests); got != wantDigests {
			t.Errorf("digests %s:\n%s\nwant (version 6):\n%s", when, got, wantDigests)
		}
	}

	insert(db, opts, old...)
	insert(ref, refOpts, old...)
	if s, d := want(); strings.Count(s, "\n") < 7 || strings.Count(d, "\n") != 3 {
		t.Fatalf("version 6 read too little to compare:\n%s\n%s", s, d)
	}
	res, err := up(ctx, db.Conn, opts, builtin[:7])
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 1 || res.Applied[0] != 7 {
		t.Fatalf("upgrade applied %v, want version 7", res.Applied)
	}
	for _, gone := range []string{schema.StatsV1, schema.MVStatsV1, schema.DurationsV4, schema.MVDurationsV4} {
		if n := countOf(t, db, "SELECT count() FROM system.tables WHERE database = '"+db.Name+"' AND name = '"+gone+"'"); n != 0 {
			t.Errorf("%s still exists after migration 7", gone)
		}
	}
	check("after the backfill")
	insert(db, opts, old...) // re-delivered: the view feeds the same hashes again
	check("after a re-delivery")
	insert(db, opts, fresh...)
	insert(ref, refOpts, fresh...)
	check("after new rows")
	for _, d := range []struct {
		db    *chtest.DB
		table string
	}{{db, opts.qualifiedFor(schema.Stats)}, {ref, refOpts.qualifiedFor(schema.StatsV1)}, {ref, refOpts.qualifiedFor(schema.DurationsV4)}} {
		if err := d.db.Conn.Exec(ctx, "OPTIMIZE TABLE "+d.table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	check("after merges")
}
