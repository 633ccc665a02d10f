// Package schema is the one place that names statustrace's ClickHouse tables
// and columns. The exporter writes them (exporter/migrate creates them), the
// query package reads them; both import these constants so neither can drift.
//
// # Tables
//
// All tables live in one database chosen by configuration (DefaultDatabase
// unless set). In cluster mode every data table below is a Distributed table
// over a Replicated table named with LocalSuffix ("transitions_local", ...):
// queries always use the names below.
//
//   - Transitions (ReplacingMergeTree(state_rank), ORDER BY (tenant,
//     request_id, seq), PARTITION BY day): one row per state change. A
//     re-delivered transition has the same key and collapses on merge; two
//     rows that claim one seq with different states collapse to the higher
//     ColStateRank (StateRankExpr), the row Events counts, so the two agree
//     after merges (schema version 3). Read with FINAL, or
//     `ORDER BY seq, StateRankExpr DESC LIMIT 1 BY tenant, request_id, seq`
//     before merges. A lookup of one event is a primary-key range: its cost
//     does not grow with the table.
//   - Events (AggregatingMergeTree, ORDER BY (tenant, namespace, function,
//     qualifier, request_id), bloom filter on request_id): current status per
//     event, fed by the materialized view MVEvents with one row per
//     transition (schema version 6; merges fold an event's rows). Every
//     column is an idempotent aggregate (max/min/any over ordered values),
//     so duplicates change nothing and a query is correct whether or not
//     merges ran, provided it groups: `GROUP BY tenant, namespace, function,
//     qualifier, request_id` and reads `max(state_key)`, `min(first_time)`,
//     ... (see the column comments below; internal/sqltmpl's
//     _event_current.sql reads them all).
//   - Stats (AggregatingMergeTree, ORDER BY (tenant, namespace, function,
//     qualifier, bucket, to_state, error_code)): per-minute counts of
//     transitions into each state and their duration digests, fed by
//     MVStats (schema version 7). Each transition's cityHash64(request_id,
//     seq) is kept once, as a key of a maxMap whose value is its duration
//     key (DurationKeyExpr), so a re-delivered transition is counted once
//     no matter how the duplicate was batched (exact up to a 64-bit hash
//     collision, < 1e-7 for a million transitions in one row). Read with
//     maxMap(transitions) grouped by the whole key: the count is the length
//     of its hashes, the histograms come from DurationPartsExpr over its
//     duration keys. For the number of events, not
//     transitions, in a state use Events.
//   - Settings (ReplacingMergeTree(updated_at), ORDER BY name): runtime
//     settings the query side needs, notably SettingRetentionSeconds.
//   - Migrations: the applied schema versions (exporter/migrate).
//
// # Retention
//
// Every data table has `TTL <time> + retention` with ttl_only_drop_parts=1 and
// daily partitions, so expired data leaves as whole parts. TTL is applied
// lazily by merges, so queries must also filter: rows whose time is older than
// RetentionCutoffExpr are never returned. The retention in force is stored in
// Settings under SettingRetentionSeconds and kept in step with the TTLs by
// migrate.Up.
package schema

import "github.com/statustrace/statustrace/event"

// DefaultDatabase is the database used when none is configured.
const DefaultDatabase = "statustrace"

// LocalSuffix names the per-shard Replicated table behind a Distributed table
// in cluster mode.
const LocalSuffix = "_local"

// Table and view names.
const (
	Transitions = "transitions"
	Events      = "events"
	Stats       = "transitions_minute"
	Settings    = "settings"
	Migrations  = "schema_migrations"

	// OtelTraces is the contrib ClickHouse exporter's traces table (the
	// collector's full-trace pipeline writes it in the same database).
	OtelTraces = "otel_traces"

	MVEvents = "events_mv"
	MVStats  = "transitions_minute_mv"

	// StatsV1 and its view held the per-minute counts in schema versions
	// 1-6 (a uniqExact set per state and error code); version 7 moved them
	// into Stats with the duration digests and dropped both.
	StatsV1   = "stats_minute"
	MVStatsV1 = "stats_minute_mv"
)

// Columns of Transitions. Keys and low-cardinality text are
// LowCardinality(String); times are DateTime64(9) UTC.
const (
	ColTenant       = "tenant"
	ColNamespace    = "namespace"
	ColFunction     = "function"
	ColQualifier    = "qualifier"
	ColRequestID    = "request_id"
	ColSeq          = "seq"           // UInt64, per-event, monotonic
	ColAttempt      = "attempt"       // UInt32
	ColFromState    = "from_state"    // "" for the first transition
	ColToState      = "to_state"      // one of event.State names
	ColTime         = "time"          // transition time = span end time; time in from_state = time - previous seq's time
	ColErrorCode    = "error_code"    // "" when no error
	ColErrorMessage = "error_message" // at most event.MaxErrorMessageBytes
	ColInvokeType   = "invoke_type"
	ColNode         = "node"
	ColTraceID      = "trace_id" // FixedString(16), raw bytes: lower(hex(trace_id)) joins otel_traces.TraceId
	ColSpanID       = "span_id"  // FixedString(8), raw bytes; ALIAS: span_id_override, else derived from (request_id, seq) by event.SQLTransitionSpanID (v5)
	// ColSpanIDOverride is what writers insert: zero bytes when the span ID is
	// the one event.TransitionSpanID derives (always, for the plugin's
	// spans), the real ID otherwise. Readers use ColSpanID.
	ColSpanIDOverride = "span_id_override" // FixedString(8)
	// ColStateRank is the version column (UInt8, MATERIALIZED
	// StateRankExpr: writers never insert it).
	ColStateRank = "state_rank"
)

// Columns of Events (besides the key columns tenant, namespace, function,
// qualifier, request_id). The comment gives the type and how to read it.
const (
	ColStateKey         = "state_key"          // SimpleAggregateFunction(max, UInt64): seq*256 + state rank (event.SQLStateKey); event.SQLStateOfKey("max(state_key)") = current to_state
	ColErrorAt          = "error_at"           // SimpleAggregateFunction(max, Tuple(UInt8, UInt64, String, String)): (has an error, seq, code, message); tupleElement(max(error_at), 3) = latest error code, "" if never failed
	ColNodeAt           = "node_at"            // SimpleAggregateFunction(max, Tuple(UInt64, String)): (seq, node); tupleElement(max(node_at), 2) = node of the latest transition
	ColState            = "state"              // AggregateFunction(argMax, String, Tuple(UInt64, UInt8)): written before schema version 6 only, dropped by version 9 (after storing what state_key's DEFAULT read)
	ColLastSeq          = "last_seq"           // SimpleAggregateFunction(max, UInt64): max(last_seq)
	ColAttempts         = "attempts"           // SimpleAggregateFunction(max, UInt32): max(attempts)
	ColFirstTime        = "first_time"         // SimpleAggregateFunction(min, DateTime64(9)): min(first_time); whole ms since migration 2
	ColLastTime         = "last_time"          // SimpleAggregateFunction(max, DateTime64(9)): max(last_time); whole ms since migration 2
	ColStartTime        = "start_time"         // SimpleAggregateFunction(min, Nullable(DateTime64(9))): min(start_time) = QUEUED time (whole ms)
	ColEndTime          = "end_time"           // SimpleAggregateFunction(max, Nullable(DateTime64(9))): max(end_time) = terminal time (whole ms), NULL while running
	ColLastErrorCode    = "last_error_code"    // AggregateFunction(argMax, String, UInt64): written before schema version 6 only, dropped by version 9 (after storing what error_at's DEFAULT read)
	ColLastErrorMessage = "last_error_message" // AggregateFunction(argMax, String, UInt64): written before schema version 6 only, dropped by version 9 (after storing what error_at's DEFAULT read)
	ColLastNode         = "last_node"          // AggregateFunction(argMax, String, UInt64): written before schema version 6 only, dropped by version 9 (after storing what node_at's DEFAULT read)
	ColEventInvokeType  = "invoke_type"        // SimpleAggregateFunction(any, LowCardinality(String)): any(invoke_type)
	ColEventTraceID     = "trace_id"           // SimpleAggregateFunction(max, FixedString(16)): max(trace_id); one trace per event
)

// Columns of Stats (besides tenant, namespace, function, qualifier, to_state
// and error_code, named as in Transitions).
const (
	ColBucket           = "bucket"      // DateTime: toStartOfMinute(transition time)
	ColStatTransitions  = "transitions" // SimpleAggregateFunction(maxMap, Tuple(Array(UInt64), Array(UInt32))): (sorted cityHash64(request_id, seq), their duration keys, DurationKeyExpr); length(maxMap(...).1) = transitions into to_state
	StatsBucketDuration = 60            // seconds per bucket
)

// Columns of Settings.
const (
	ColSettingName      = "name"
	ColSettingValue     = "value"
	ColSettingUpdatedAt = "updated_at"
)

// Setting names stored in Settings.
const (
	// SettingRetentionSeconds is the retention in force, in whole seconds
	// (decimal text). migrate.Up writes it together with the tables' TTLs.
	SettingRetentionSeconds = "retention_seconds"
)

// DefaultRetentionSeconds is the retention when none is configured: 72h.
const DefaultRetentionSeconds = 72 * 3600

// RetentionSecondsExpr is a scalar SQL subquery giving the retention in force
// (falls back to DefaultRetentionSeconds when Settings is empty). It uses the
// unqualified Settings table, so run it with the statustrace database as the
// connection's default database.
const RetentionSecondsExpr = "(SELECT ifNull(toUInt64OrNull(argMax(" + ColSettingValue + ", " + ColSettingUpdatedAt + ")), 259200) FROM " +
	Settings + " WHERE " + ColSettingName + " = '" + SettingRetentionSeconds + "')"

// RetentionCutoffExpr is the oldest transition time still visible. Every read
// filters `time >= RetentionCutoffExpr` (or last_time / bucket for Events and
// Stats) so that expired rows are invisible before TTL merges remove them.
const RetentionCutoffExpr = "(now64(9) - toIntervalSecond(" + RetentionSecondsExpr + "))"

// StateRankExpr orders states for the tie-break when two transitions of one
// event carry the same seq: terminal states win over non-terminal ones, then
// later states over earlier ones (event.State order). It is an expression
// over the to_state column. The current status of an event is
// argMax(to_state, (seq, StateRankExpr)): equal (seq, rank) means equal
// state, so the result is deterministic.
// Generated from package event (State.Rank), like every state rule in SQL.
var StateRankExpr = event.SQLStateRank(ColToState)
