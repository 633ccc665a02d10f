package migrate

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
)

var update = flag.Bool("update", false, "rewrite the golden DDL files in testdata")

// renderFile renders bootstrap, migrations and the retention statements into
// one text, the way Up would run them on an empty database.
func renderFile(t *testing.T, opts Options) string {
	t.Helper()
	o, err := opts.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := o.renderAll(builtin)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("-- bootstrap\n")
	for _, q := range o.bootstrapSQL() {
		b.WriteString(q + ";\n\n")
	}
	for _, r := range rs {
		b.WriteString("-- migration " + r.Name + "\n")
		for i, q := range r.SQL {
			if r.SkipIf[i] != "" {
				b.WriteString("-- skipped when not 0: " + r.SkipIf[i] + "\n")
			}
			if r.Each[i] != "" {
				b.WriteString("-- once per row of: " + r.Each[i] + "\n")
			}
			b.WriteString(q + ";\n\n")
		}
	}
	b.WriteString("-- retention\n")
	for _, q := range o.retentionSQL() {
		b.WriteString(q + ";\n")
	}
	return b.String()
}

func TestRenderGolden(t *testing.T) {
	cases := map[string]Options{
		"single.sql":  {},
		"cluster.sql": {Database: "st", Cluster: "prod-1", Retention: 48 * time.Hour, AutoStatistics: true},
		"pernode.sql": {Database: "st", Cluster: "local2", PerNode: true, AutoStatistics: true},
	}
	for file, opts := range cases {
		t.Run(file, func(t *testing.T) {
			got := renderFile(t, opts)
			path := filepath.Join("testdata", file)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Errorf("rendered DDL differs from %s (run go test -update if the change is intended):\n%s", path, got)
			}
		})
	}
}

func TestRenderSingleNode(t *testing.T) {
	sql := renderFile(t, Options{Database: "db1"})
	for _, bad := range []string{"ON CLUSTER", "Replicated", "Distributed", "_local", "{{", "<no value>"} {
		if strings.Contains(sql, bad) {
			t.Errorf("single-node DDL contains %q", bad)
		}
	}
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS `db1`.`transitions`",
		"ENGINE = ReplacingMergeTree()\nPARTITION BY toDate(time)\nORDER BY (tenant, request_id, seq)",
		"TTL toDateTime(time) + toIntervalSecond(259200)",
		"ENGINE = AggregatingMergeTree()",
		"TO `db1`.`events` AS",
		"FROM `db1`.`transitions`",
		"ttl_only_drop_parts = 1",
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("single-node DDL lacks %q", want)
		}
	}
}

func TestRenderCluster(t *testing.T) {
	sql := renderFile(t, Options{Database: "db1", Cluster: "c1", Retention: 90 * time.Minute})
	stmts := strings.Split(sql, ";\n")
	for _, s := range stmts {
		s = strings.TrimSpace(s)
		if i := strings.LastIndex(s, "\n-- "); i >= 0 || strings.HasPrefix(s, "-- ") {
			s = s[strings.Index(s, "\n")+1:]
		}
		if s == "" || strings.HasPrefix(s, "SELECT throwIf(") { // a check, not DDL
			continue
		}
		if strings.HasPrefix(s, "INSERT INTO ") { // a backfill: data, on the migrating node's shard
			continue
		}
		if !strings.Contains(s, " ON CLUSTER `c1`") {
			t.Errorf("cluster statement without ON CLUSTER:\n%s", s)
		}
		if strings.Contains(s, "MergeTree(") && !strings.Contains(s, "ENGINE = Replicated") {
			t.Errorf("cluster table with a non-replicated engine:\n%s", s)
		}
	}
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS `db1`.`transitions_local` ON CLUSTER `c1`",
		"ReplicatedReplacingMergeTree('/clickhouse/statustrace/db1/{shard}/transitions_local', '{replica}')",
		"CREATE TABLE IF NOT EXISTS `db1`.`transitions` ON CLUSTER `c1` AS `db1`.`transitions_local` ENGINE = Distributed('c1', 'db1', 'transitions_local', cityHash64(tenant, request_id))",
		"CREATE TABLE IF NOT EXISTS `db1`.`events` ON CLUSTER `c1` AS `db1`.`events_local` ENGINE = Distributed('c1', 'db1', 'events_local')",
		"CREATE TABLE IF NOT EXISTS `db1`.`stats_minute` ON CLUSTER `c1` AS `db1`.`stats_minute_local` ENGINE = Distributed('c1', 'db1', 'stats_minute_local')",
		// settings and migrations are replicated to every node, not sharded
		"ReplicatedReplacingMergeTree('/clickhouse/statustrace/db1/settings', '{replica}', updated_at)",
		"ReplicatedReplacingMergeTree('/clickhouse/statustrace/db1/schema_migrations', '{replica}', applied_at)",
		// views read and write the shard-local tables
		"TO `db1`.`events_local` AS",
		"FROM `db1`.`transitions_local`",
		"ALTER TABLE `db1`.`transitions_local` ON CLUSTER `c1` MODIFY TTL toDateTime(time) + toIntervalSecond(5400)",
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("cluster DDL lacks %q", want)
		}
	}
}

// TestRenderPerNode: a cluster without Keeper (deploy/shard): the same
// tables as cluster mode, but plain MergeTree and no ON CLUSTER.
func TestRenderPerNode(t *testing.T) {
	sql := renderFile(t, Options{Database: "db1", Cluster: "c1", PerNode: true})
	for _, bad := range []string{"ON CLUSTER", "Replicated", "{shard}", "{replica}"} {
		if strings.Contains(sql, bad) {
			t.Errorf("per-node DDL contains %q", bad)
		}
	}
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS `db1`.`transitions_local`\n",
		"ENGINE = ReplacingMergeTree()\nPARTITION BY toDate(time)",
		"CREATE TABLE IF NOT EXISTS `db1`.`transitions` AS `db1`.`transitions_local` ENGINE = Distributed('c1', 'db1', 'transitions_local', cityHash64(tenant, request_id))",
		"CREATE TABLE IF NOT EXISTS `db1`.`events` AS `db1`.`events_local` ENGINE = Distributed('c1', 'db1', 'events_local')",
		"TO `db1`.`events_local` AS",
		"FROM `db1`.`transitions_local`",
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("per-node DDL lacks %q", want)
		}
	}
	if err := (Options{PerNode: true}).Validate(); err == nil {
		t.Error("per-node mode without a cluster: no error")
	}
}

func TestOptionsValidate(t *testing.T) {
	bad := []Options{
		{Database: "x; DROP TABLE y"},
		{Database: "1abc"},
		{Database: "a`b"},
		{Cluster: "c' OR 1"},
		{Retention: -time.Hour},
		{Retention: 1500 * time.Millisecond},
		{ReplicationPathPrefix: "relative/path"},
		{ReplicationPathPrefix: "/a'b"},
	}
	for _, o := range bad {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("%+v: want an error", o)
		}
		if _, err := Render(o); err == nil {
			t.Errorf("Render(%+v): want an error", o)
		}
	}
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Database != schema.DefaultDatabase || o.Retention != 72*time.Hour {
		t.Errorf("defaults: %+v", o)
	}
}

// Every column name the query side reads through internal/schema must be
// one the DDL creates.
func TestSchemaNamesAppearInDDL(t *testing.T) {
	sql := renderFile(t, Options{})
	for _, col := range []string{
		schema.ColTenant, schema.ColNamespace, schema.ColFunction, schema.ColQualifier, schema.ColRequestID,
		schema.ColSeq, schema.ColAttempt, schema.ColFromState, schema.ColToState, schema.ColTime,
		schema.ColErrorCode, schema.ColErrorMessage, schema.ColInvokeType, schema.ColNode,
		schema.ColTraceID, schema.ColSpanID, schema.ColState, schema.ColLastSeq, schema.ColAttempts,
		schema.ColFirstTime, schema.ColLastTime, schema.ColStartTime, schema.ColEndTime,
		schema.ColLastErrorCode, schema.ColLastErrorMessage, schema.ColLastNode, schema.ColEventInvokeType,
		schema.ColEventTraceID, schema.ColBucket, schema.ColStatTransitions,
		schema.ColStateKey, schema.ColErrorAt, schema.ColNodeAt,
		schema.ColSettingName, schema.ColSettingValue, schema.ColSettingUpdatedAt,
	} {
		if !strings.Contains(sql, "\n    "+col+" ") && !strings.Contains(sql, "\n    ADD COLUMN IF NOT EXISTS "+col+" ") {
			t.Errorf("column %q is not declared in the DDL", col)
		}
	}
	for _, tbl := range []string{schema.Transitions, schema.Events, schema.Stats, schema.Settings, schema.Migrations, schema.MVEvents, schema.MVStats} {
		if !strings.Contains(sql, "`"+tbl+"`") {
			t.Errorf("table %q is not created", tbl)
		}
	}
}

// The state rank used for tie-breaks must follow event.State's order.
func TestStateRankMatchesEventStates(t *testing.T) {
	var names []string
	for s := event.StateQueued; s.Valid(); s++ {
		names = append(names, "'"+s.String()+"'")
	}
	if want := "[" + strings.Join(names, ",") + "]"; !strings.Contains(schema.StateRankExpr, want) {
		t.Errorf("StateRankExpr %s does not list the states %s in order", schema.StateRankExpr, want)
	}
	if !strings.Contains(schema.RetentionSecondsExpr, "259200") || schema.DefaultRetentionSeconds != 259200 {
		t.Error("RetentionSecondsExpr fallback differs from DefaultRetentionSeconds")
	}
}

func TestChecksumStable(t *testing.T) {
	m := builtin[0]
	c := m.Checksum()
	m2 := m
	m2.Statements = append([]string(nil), m.Statements...)
	m2.Statements[0] = strings.Replace(m2.Statements[0], "ORDER BY (tenant, request_id, seq)", "ORDER BY (tenant, request_id, seq, attempt)", 1)
	if m2.Checksum() == c {
		t.Error("changing a statement must change the checksum")
	}
	if builtin[0].Checksum() != c {
		t.Error("checksum is not deterministic")
	}
}

// Every released migration renders to the SQL it was released with: the
// checksum covers the rendered statements, so editing a template or a Go
// constant a template pulls in fails here (and Up refuses to run).
func TestReleasedChecksums(t *testing.T) {
	for _, m := range builtin {
		pin, ok := released[m.Version]
		if !ok || pin.rendered == "" {
			t.Errorf("migration %d is not pinned in checksums.go: rendered %q", m.Version, m.Checksum())
			continue
		}
		if got := m.Checksum(); got != pin.rendered {
			t.Errorf("migration %d renders to checksum %s, released as %s: a released migration changed (its template or a constant it uses); add a new version instead", m.Version, got, pin.rendered)
		}
	}
	for v, pin := range released {
		if (pin.legacy != "") != (v <= 2) {
			t.Errorf("migration %d: a legacy checksum only for versions released before checksums covered rendered SQL", v)
		}
	}
}

// A Go constant that a template pulls in is part of the checksum: had
// StateRankExpr changed, migrations 1-3 (which use it) would no longer
// match what was released.
func TestChecksumCoversGoConstants(t *testing.T) {
	for _, m := range builtin {
		uses := false
		for _, s := range m.Statements {
			uses = uses || strings.Contains(s, "{{stateRank")
		}
		changed := m.checksum("toUInt8(indexOf(['QUEUED','RUNNING'], to_state))") != m.Checksum()
		if changed != uses {
			t.Errorf("migration %d uses stateRank: %v, checksum changed with it: %v", m.Version, uses, changed)
		}
	}
}
