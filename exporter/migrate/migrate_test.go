package migrate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeConn records statements and keeps the two tables Up reads, so the
// versioning logic can be tested without an engine (the same behaviour is
// tested against ClickHouse in migrate_ch_test.go).
type fakeConn struct {
	execs     []string
	applied   []Applied
	retention string
	failOn    string   // Exec fails for a statement containing this
	settings  []string // MergeTree settings the server knows
}

func (f *fakeConn) Exec(_ context.Context, q string, args ...any) error {
	if f.failOn != "" && strings.Contains(q, f.failOn) {
		return errors.New("boom")
	}
	f.execs = append(f.execs, q)
	switch {
	case strings.HasPrefix(q, "INSERT INTO `") && strings.Contains(q, "schema_migrations"):
		f.applied = append(f.applied, Applied{Version: args[0].(uint32), Name: args[1].(string), Checksum: args[2].(string)})
	case strings.HasPrefix(q, "INSERT INTO `") && strings.Contains(q, "settings"):
		f.retention = args[1].(string)
	}
	return nil
}

func (f *fakeConn) Select(_ context.Context, dest any, q string, args ...any) error {
	switch d := dest.(type) {
	case *[]Applied:
		*d = append(*d, f.applied...)
	case *[]struct {
		Name string `ch:"name"`
	}:
		for _, name := range f.settings {
			if strings.Contains(q, "merge_tree_settings") && len(args) == 1 && args[0] == name {
				*d = append(*d, struct {
					Name string `ch:"name"`
				}{name})
			}
		}
	case *[]struct {
		Value string `ch:"value"`
	}:
		if f.retention != "" {
			*d = append(*d, struct {
				Value string `ch:"value"`
			}{f.retention})
		}
	case *[]struct {
		N uint64 `ch:"n"`
	}:
		// Guards: nothing is converted or left over yet, so no statement
		// is skipped.
		*d = append(*d, struct {
			N uint64 `ch:"n"`
		}{0})
	case *[]struct {
		ID string `ch:"partition_id"`
	}:
		// Per-partition statements: the fake has no partitions.
	default:
		return errors.New("unexpected select: " + q)
	}
	return nil
}

func TestUpAppliesThenNoOp(t *testing.T) {
	ctx := context.Background()
	f := &fakeConn{}
	res, err := Up(ctx, f, Options{Database: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != len(builtin) || res.Version != uint32(len(builtin)) || !res.RetentionChanged {
		t.Fatalf("first Up: %+v", res)
	}
	if f.retention != "259200" {
		t.Errorf("retention setting %q", f.retention)
	}
	n := len(f.execs)
	res, err = Up(ctx, f, Options{Database: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 0 || res.RetentionChanged || res.Version != uint32(len(builtin)) {
		t.Fatalf("second Up should be a no-op: %+v", res)
	}
	// Only the two bootstrap statements run again.
	for _, q := range f.execs[n:] {
		if !strings.HasPrefix(q, "CREATE DATABASE IF NOT EXISTS") && !strings.Contains(q, "`schema_migrations`") {
			t.Errorf("second Up ran %q", q)
		}
	}
}

// Up turns off the costly automatic column statistics only on a server that
// has them: an older one would reject the unknown setting.
func TestUpAutoStatistics(t *testing.T) {
	for _, known := range []bool{false, true} {
		f := &fakeConn{}
		if known {
			f.settings = []string{"auto_statistics_types"}
		}
		if _, err := Up(context.Background(), f, Options{Database: "d"}); err != nil {
			t.Fatal(err)
		}
		var tables int
		for _, q := range f.execs {
			if !strings.Contains(q, "MergeTree()") || strings.Contains(q, "schema_migrations") || strings.Contains(q, "`settings`") {
				continue
			}
			tables++
			if got := strings.Contains(q, "auto_statistics_types = 'minmax'"); got != known {
				t.Errorf("server knows the setting: %v, DDL sets it: %v:\n%s", known, got, q)
			}
		}
		// transitions, events, stats_minute, durations_minute (v4) and
		// transitions_minute (v7); the v3 rebuild's table is versioned.
		if tables != 5 {
			t.Errorf("%d data tables created, want 5", tables)
		}
	}
}

func TestUpRetentionChange(t *testing.T) {
	ctx := context.Background()
	f := &fakeConn{}
	if _, err := Up(ctx, f, Options{Database: "d"}); err != nil {
		t.Fatal(err)
	}
	n := len(f.execs)
	res, err := Up(ctx, f, Options{Database: "d", Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !res.RetentionChanged || f.retention != "86400" {
		t.Fatalf("retention change not applied: %+v, setting %q", res, f.retention)
	}
	var alters int
	for _, q := range f.execs[n:] {
		if strings.HasPrefix(q, "ALTER TABLE") {
			alters++
			if !strings.Contains(q, "toIntervalSecond(86400)") {
				t.Errorf("ALTER with wrong TTL: %s", q)
			}
		}
	}
	if want := len(ttlTables) - len(ttlUntil); alters != want { // the tables migration 7 dropped keep none
		t.Errorf("%d ALTERs, want %d", alters, want)
	}
}

func TestUpRefusesChangedMigration(t *testing.T) {
	ctx := context.Background()
	f := &fakeConn{}
	if _, err := Up(ctx, f, Options{Database: "d"}); err != nil {
		t.Fatal(err)
	}
	changed := Migrations()
	changed[0].Statements = append([]string{"SELECT 1"}, changed[0].Statements...)
	n := len(f.execs)
	_, err := up(ctx, f, Options{Database: "d"}, changed)
	if err == nil || !strings.Contains(err.Error(), "must not change") {
		t.Fatalf("want a changed-migration error, got %v", err)
	}
	if len(f.execs) != n+2 { // bootstrap only
		t.Errorf("ran statements after detecting the change: %q", f.execs[n:])
	}
}

func TestUpRefusesNewerDatabase(t *testing.T) {
	f := &fakeConn{applied: []Applied{{Version: uint32(len(builtin) + 1), Name: "future"}}}
	_, err := Up(context.Background(), f, Options{Database: "d"})
	if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("want a newer-schema error, got %v", err)
	}
}

func TestUpAppliesOnlyNewVersions(t *testing.T) {
	ctx := context.Background()
	f := &fakeConn{}
	if _, err := Up(ctx, f, Options{Database: "d"}); err != nil {
		t.Fatal(err)
	}
	next := append(Migrations(), Migration{
		Version:    uint32(len(builtin) + 1),
		Name:       "add a column",
		Statements: []string{`ALTER TABLE {{table "transitions"}}{{.OnCluster}} ADD COLUMN IF NOT EXISTS region LowCardinality(String)`},
	})
	n := len(f.execs)
	res, err := up(ctx, f, Options{Database: "d"}, next)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 1 || res.Applied[0] != uint32(len(next)) {
		t.Fatalf("applied %v, want only the new version", res.Applied)
	}
	var ran []string
	for _, q := range f.execs[n+2:] {
		if !strings.Contains(q, "schema_migrations_lock") {
			ran = append(ran, q)
		}
	}
	if len(ran) != 2 || !strings.Contains(ran[0], "ADD COLUMN IF NOT EXISTS region") {
		t.Errorf("ran %q", ran)
	}
}

func TestUpStopsAtFailedStatementAndResumes(t *testing.T) {
	ctx := context.Background()
	f := &fakeConn{failOn: "stats_minute_mv"}
	if _, err := Up(ctx, f, Options{Database: "d"}); err == nil {
		t.Fatal("want an error")
	}
	if len(f.applied) != 0 {
		t.Fatalf("a failed migration must not be recorded: %+v", f.applied)
	}
	f.failOn = ""
	res, err := Up(ctx, f, Options{Database: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != len(builtin) {
		t.Fatalf("resume applied %v", res.Applied)
	}
}

func TestRenderRejectsGaps(t *testing.T) {
	o, _ := Options{}.withDefaults()
	_, err := o.renderAll([]Migration{{Version: 2, Name: "x"}})
	if err == nil {
		t.Fatal("want an error for a version gap")
	}
	_, err = o.renderAll([]Migration{{Version: 1, Name: "x", Statements: []string{`SELECT * FROM {{table "nope"}}`}}})
	if err == nil {
		t.Fatal("want an error for an unknown table")
	}
}
