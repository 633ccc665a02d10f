package migrate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/statustrace/statustrace/internal/chtest"
	"github.com/statustrace/statustrace/internal/schema"
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
	changed[0].Statements[0] = strings.Replace(changed[0].Statements[0], "attempt       UInt32", "attempt       UInt64", 1)
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
