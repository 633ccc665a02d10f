package migrate

import (
	"embed"
	"fmt"
	"strings"
)

// The schema history, in sql/000N.sql (one file per version). Rules:
//   - A migration, once released, never changes: its checksum is recorded
//     when it is applied and Up refuses to run against a database whose
//     recorded checksum differs. A changed column is a new version (ALTER ...).
//   - Every statement is safe to run twice (IF NOT EXISTS / IF EXISTS), so a
//     migration interrupted half-way is finished by the next Up.
//   - Templates see: {{.DB}} (quoted database), {{.OnCluster}} (" ON CLUSTER `c`"
//     or ""), {{table "name"}} (the physical table: name_local in cluster mode
//     for sharded tables), {{engine "AggregatingMergeTree" "args"}} and
//     {{globalEngine ...}} (Replicated variants in cluster mode, sharded or
//     replicated to every node), {{distributed "name" "shardingKey"}} (the
//     Distributed table in cluster mode, nothing otherwise), {{ttl "expr"}}
//     (the retention TTL clause), {{settings "a = 1, ..."}} (a data table's
//     SETTINGS clause, with auto_statistics_types where the server has it),
//     {{if clustered}} (cluster mode only), and every function of
//     internal/sqltmpl (state rules from package event: {{state "queued"}},
//     {{isTerminal "to_state"}}, {{stateRank "to_state"}}; the duration
//     digests' {{durationKind "run"}} and {{digestBin "expr"}}). Table and column names come from
//     internal/schema so the query side reads what is written here.

// builtin is the ordered list of migrations. Version numbers start at 1 and
// have no gaps. The statements of version N are in sql/000N.sql.
var builtin = []Migration{
	{Version: 1, Name: "transitions, events and per-minute stats with their materialized views"},
	{Version: 2, Name: "events: times at millisecond precision, stored with the GCD codec"},
	{Version: 3, Name: "transitions: same (tenant, request_id, seq) keeps the higher-ranked state on merge (version column state_rank)"},
	{Version: 4, Name: "duration digests: transitions carry the time in from_state and the event's age, durations_minute holds per-minute deduplicated histograms"},
	{Version: 5, Name: "transitions: span_id applies the all-zero rule of the plugin's span IDs (event.TransitionSpanID)"},
	{Version: 6, Name: "events: the current state, last error and node as plain maxima, one row per transition (no aggregate states on insert)"},
	{Version: 7, Name: "transitions_minute: one set of transition hashes per minute, state and error code serves the counts and the duration digests (stats_minute and durations_minute dropped)"},
	{Version: 8, Name: "transitions: from_state_ns and event_ns expire at once (column TTL): the view reads them on insert, nothing reads them after"},
	{Version: 9, Name: "events: rows written before version 6 store the new columns, and the argMax columns nobody reads are dropped"},
	{Version: 10, Name: "transitions: stronger codecs on the small columns (ZSTD(9) on the low-cardinality ones, DoubleDelta on seq)"},
	{Version: 11, Name: "transitions_minute_mv sorts each row's (hash, duration key) pairs once instead of building a maxMap"},
	{Version: 12, Name: "transitions: the exporter sends each row's duration key (duration_key) instead of two durations"},
	{Version: 13, Name: "transitions: ZSTD(6) instead of ZSTD(9) on the low-cardinality columns and state_rank (cheaper inserts, same bytes within 0.1 per transition)"},
}

//go:embed sql/*.sql
var sqlFS embed.FS

func init() {
	for i := range builtin {
		sts, err := loadStatements(fmt.Sprintf("sql/%04d.sql", builtin[i].Version))
		if err != nil {
			panic(fmt.Sprintf("migrate: %v", err)) // embedded: a build defect
		}
		builtin[i].Statements = sts
	}
	b, err := sqlFS.ReadFile("sql/_transitions_columns.sql")
	if err != nil {
		panic(fmt.Sprintf("migrate: %v", err))
	}
	transitionsColumns = strings.TrimRight(string(b), "\n")
}

// loadStatements splits a migration file into its statement templates: each
// ends with a line holding only ";", and the comment and blank lines that
// open it document it and are not part of it.
func loadStatements(file string) ([]string, error) {
	b, err := sqlFS.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, block := range strings.Split(string(b), "\n;\n") {
		lines := strings.Split(block, "\n")
		i := 0
		for i < len(lines) && (strings.HasPrefix(lines[i], "--") || strings.TrimSpace(lines[i]) == "") {
			i++
		}
		if st := strings.Join(lines[i:], "\n"); strings.TrimSpace(st) != "" {
			out = append(out, st)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no statements", file)
	}
	return out, nil
}

// transitionsColumns is the column list of transitions as migration 1
// created it (sql/_transitions_columns.sql); migration 3 rebuilds the table
// with the same columns and the version. (Checksums cover the rendered SQL,
// so this file is pinned like the migrations that use it.)
var transitionsColumns string

// ttlTables lists the physical tables whose TTL follows the retention, with
// the time expression the TTL is computed from.
var ttlTables = []struct{ name, expr string }{
	{"transitions", "toDateTime(time)"},
	{"events", "toDateTime(last_time)"},
	{"stats_minute", "bucket"},
	{"durations_minute", "bucket"},
	{"transitions_minute", "bucket"},
}

// ttlSince is the migration that creates a ttlTables entry, for those that
// migration 1 did not.
var ttlSince = map[string]uint32{"durations_minute": 4, "transitions_minute": 7}

// ttlUntil is the migration that drops a ttlTables entry.
var ttlUntil = map[string]uint32{"stats_minute": 7, "durations_minute": 7}
