package migrate

// The schema history. Rules:
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
//     SETTINGS clause, with auto_statistics_types where the server has it).
//     Table and column names come from internal/schema so the query side
//     reads what is written here.

// builtin is the ordered list of migrations. Version numbers start at 1 and
// have no gaps.
var builtin = []Migration{
	{
		Version: 1,
		Name:    "transitions, events and per-minute stats with their materialized views",
		Statements: []string{
			// Raw transitions. ReplacingMergeTree keyed by (tenant, request_id,
			// seq): a re-delivered transition collapses on merge, FINAL/LIMIT 1 BY
			// hides it before. The key also makes a request_id lookup a primary
			// key range. Codecs were chosen by measurement (exporter/README.md,
			// "Storage"): ZSTD on the LowCardinality index streams, T64 for
			// times and small integers.
			`CREATE TABLE IF NOT EXISTS {{table "transitions"}}{{.OnCluster}}
(
{{transitionsColumns}}
)
ENGINE = {{engine "ReplacingMergeTree" ""}}
PARTITION BY toDate(time)
ORDER BY (tenant, request_id, seq)
{{ttl "toDateTime(time)"}}
{{settings "ttl_only_drop_parts = 1, index_granularity = 8192"}}`,
			`{{distributed "transitions" "cityHash64(tenant, request_id)"}}`,

			// Current status per event. Every column is an idempotent aggregate,
			// so re-delivered transitions change nothing and readers that GROUP BY
			// the key are right whether or not merges ran.
			`CREATE TABLE IF NOT EXISTS {{table "events"}}{{.OnCluster}}
(
    tenant             LowCardinality(String),
    namespace          LowCardinality(String),
    function           LowCardinality(String),
    qualifier          LowCardinality(String),
    request_id         String CODEC(ZSTD(1)),
    state              AggregateFunction(argMax, String, Tuple(UInt64, UInt8)) CODEC(ZSTD(3)),
    last_seq           SimpleAggregateFunction(max, UInt64) CODEC(T64, ZSTD(1)),
    attempts           SimpleAggregateFunction(max, UInt32) CODEC(T64, ZSTD(1)),
    first_time         SimpleAggregateFunction(min, DateTime64(9, 'UTC')) CODEC(T64, ZSTD(1)),
    last_time          SimpleAggregateFunction(max, DateTime64(9, 'UTC')) CODEC(T64, ZSTD(1)),
    start_time         SimpleAggregateFunction(min, Nullable(DateTime64(9, 'UTC'))) CODEC(T64, ZSTD(1)),
    end_time           SimpleAggregateFunction(max, Nullable(DateTime64(9, 'UTC'))) CODEC(T64, ZSTD(1)),
    last_error_code    AggregateFunction(argMax, String, Tuple(UInt8, UInt64)) CODEC(ZSTD(3)),
    last_error_message AggregateFunction(argMax, String, Tuple(UInt8, UInt64)) CODEC(ZSTD(3)),
    last_node          AggregateFunction(argMax, String, UInt64) CODEC(ZSTD(3)),
    invoke_type        SimpleAggregateFunction(any, LowCardinality(String)),
    trace_id           SimpleAggregateFunction(max, FixedString(16)) CODEC(ZSTD(1)),
    INDEX idx_request_id request_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = {{engine "AggregatingMergeTree" ""}}
PARTITION BY toDate(last_time)
ORDER BY (tenant, namespace, function, qualifier, request_id)
{{ttl "toDateTime(last_time)"}}
{{settings "ttl_only_drop_parts = 1, index_granularity = 8192"}}`,
			`{{distributed "events" ""}}`,

			// Per-minute statistics. A uniqExact state over the 64-bit hash of
			// (request_id, seq) counts a re-delivered transition once, however the
			// duplicate was batched (exact up to a 64-bit hash collision: below
			// 1e-7 for a million transitions in one row); a statistics query reads
			// one row per (function, minute, state, error code).
			`CREATE TABLE IF NOT EXISTS {{table "stats_minute"}}{{.OnCluster}}
(
    tenant      LowCardinality(String),
    namespace   LowCardinality(String),
    function    LowCardinality(String),
    qualifier   LowCardinality(String),
    bucket      DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    to_state    LowCardinality(String),
    error_code  LowCardinality(String),
    transitions AggregateFunction(uniqExact, UInt64)
)
ENGINE = {{engine "AggregatingMergeTree" ""}}
PARTITION BY toDate(bucket)
ORDER BY (tenant, namespace, function, qualifier, bucket, to_state, error_code)
{{ttl "bucket"}}
{{settings "ttl_only_drop_parts = 1, index_granularity = 8192"}}`,
			`{{distributed "stats_minute" ""}}`,

			// Settings the query side needs (the retention in force).
			`CREATE TABLE IF NOT EXISTS {{name "settings"}}{{.OnCluster}}
(
    name       LowCardinality(String),
    value      String,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = {{globalEngine "ReplacingMergeTree" "updated_at"}}
ORDER BY name`,

			`CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "events_mv"}}{{.OnCluster}} TO {{table "events"}} AS
SELECT
    tenant, namespace, function, qualifier, request_id,
    argMaxState(CAST(to_state, 'String'), (seq, {{stateRank}})) AS state,
    max(seq) AS last_seq,
    max(attempt) AS attempts,
    min(time) AS first_time,
    max(time) AS last_time,
    minOrNullIf(time, to_state = 'QUEUED') AS start_time,
    maxOrNullIf(time, to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED')) AS end_time,
    argMaxState(CAST(error_code, 'String'), (toUInt8(error_code != '' OR error_message != ''), seq)) AS last_error_code,
    argMaxState(error_message, (toUInt8(error_code != '' OR error_message != ''), seq)) AS last_error_message,
    argMaxState(CAST(node, 'String'), seq) AS last_node,
    any(invoke_type) AS invoke_type,
    max(trace_id) AS trace_id
FROM {{table "transitions"}}
GROUP BY tenant, namespace, function, qualifier, request_id`,

			`CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "stats_minute_mv"}}{{.OnCluster}} TO {{table "stats_minute"}} AS
SELECT
    tenant, namespace, function, qualifier,
    toStartOfMinute(toDateTime(time, 'UTC')) AS bucket,
    to_state, error_code,
    uniqExactState(cityHash64(request_id, seq)) AS transitions
FROM {{table "transitions"}}
GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code`,
		},
	},
	{
		Version: 2,
		Name:    "events: times at millisecond precision, stored with the GCD codec",
		Statements: []string{
			// The status table's times are what lists filter on (Unix ms in
			// the API) and what Grafana shows; at full nanoseconds each cost
			// ~42 bits of clock noise per event. The columns stay
			// DateTime64(9), as every timestamp in the schema, and hold
			// whole milliseconds; GCD divides a block by 10^6 before T64
			// crops the constant high bits. The exact times stay in
			// transitions, which a lookup's timeline reads. Changing a
			// codec is metadata only (older parts keep theirs until merged),
			// so this is allowed on last_time, a key column.
			`ALTER TABLE {{table "events"}}{{.OnCluster}}
    MODIFY COLUMN first_time SimpleAggregateFunction(min, DateTime64(9, 'UTC')) CODEC(GCD, T64, ZSTD(1)),
    MODIFY COLUMN last_time  SimpleAggregateFunction(max, DateTime64(9, 'UTC')) CODEC(GCD, T64, ZSTD(1)),
    MODIFY COLUMN start_time SimpleAggregateFunction(min, Nullable(DateTime64(9, 'UTC'))) CODEC(GCD, T64, ZSTD(1)),
    MODIFY COLUMN end_time   SimpleAggregateFunction(max, Nullable(DateTime64(9, 'UTC'))) CODEC(GCD, T64, ZSTD(1))`,
			// The view truncates to the millisecond (commutes with min/max,
			// so old and new rows of one event aggregate consistently).
			// MODIFY QUERY swaps the query atomically: no insert misses it.
			`ALTER TABLE {{name "events_mv"}}{{.OnCluster}} MODIFY QUERY
SELECT
    tenant, namespace, function, qualifier, request_id,
    argMaxState(CAST(to_state, 'String'), (seq, {{stateRank}})) AS state,
    max(seq) AS last_seq,
    max(attempt) AS attempts,
    toDateTime64(toStartOfMillisecond(min(time)), 9, 'UTC') AS first_time,
    toDateTime64(toStartOfMillisecond(max(time)), 9, 'UTC') AS last_time,
    toDateTime64(toStartOfMillisecond(minOrNullIf(time, to_state = 'QUEUED')), 9, 'UTC') AS start_time,
    toDateTime64(toStartOfMillisecond(maxOrNullIf(time, to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED'))), 9, 'UTC') AS end_time,
    argMaxState(CAST(error_code, 'String'), (toUInt8(error_code != '' OR error_message != ''), seq)) AS last_error_code,
    argMaxState(error_message, (toUInt8(error_code != '' OR error_message != ''), seq)) AS last_error_message,
    argMaxState(CAST(node, 'String'), seq) AS last_node,
    any(invoke_type) AS invoke_type,
    max(trace_id) AS trace_id
FROM {{table "transitions"}}
GROUP BY tenant, namespace, function, qualifier, request_id`,
		},
	},
	{
		Version: 3,
		Name:    "transitions: same (tenant, request_id, seq) keeps the higher-ranked state on merge (version column state_rank)",
		// Two rows can claim one seq with different states (a retried report
		// after a terminate, a buggy producer). events keeps the one with the
		// higher state rank (argMax by (seq, rank)); transitions, a
		// ReplacingMergeTree without a version, kept whichever was inserted
		// last once parts merged, so a lookup's timeline and the list could
		// disagree for good. The version column makes the merge keep the
		// same row the view keeps.
		//
		// A table's engine cannot be altered, so transitions is rebuilt in
		// place, rows kept and no insert lost: a new table with the version
		// is swapped in atomically (EXCHANGE TABLES: inserts and the
		// materialized views follow the name), then the old table's parts
		// are moved into it partition by partition (metadata only: no row is
		// rewritten, and the views are not fed twice), and the emptied old
		// table is dropped. Migrators take turns (the migration lock, see
		// lock.go); steps that cannot be idempotent are guarded, so an
		// interrupted run is finished by the next Up; the last statement
		// fails (and Up retries later) unless the rebuild is complete. A
		// part that an insert started before the swap commits to the old
		// table after the move is moved by that retry, never dropped: the
		// old table is dropped only when empty (only an insert that commits
		// between that check and the drop, microseconds, could be lost).
		Statements: []string{
			// The old table gets the column too (computed from to_state for
			// rows written before: metadata only), so that its parts fit the
			// new table.
			`ALTER TABLE {{table "transitions"}}{{.OnCluster}}
    ADD COLUMN IF NOT EXISTS state_rank UInt8 MATERIALIZED {{stateRank}} CODEC(ZSTD(1))`,
			`{{skipIfVersioned "transitions" "state_rank"}}CREATE TABLE IF NOT EXISTS {{tableAs "transitions" "_v3_new"}}{{.OnCluster}}
(
{{transitionsColumns}},
    -- The version: the state rank the events view breaks same-seq ties
    -- with (terminal over non-terminal, then later over earlier).
    state_rank    UInt8 MATERIALIZED {{stateRank}} CODEC(ZSTD(1))
)
ENGINE = {{engine "ReplacingMergeTree" "state_rank"}}
PARTITION BY toDate(time)
ORDER BY (tenant, request_id, seq)
{{ttl "toDateTime(time)"}}
{{settings "ttl_only_drop_parts = 1, index_granularity = 8192"}}`,
			`{{skipIfVersioned "transitions" "state_rank"}}EXCHANGE TABLES {{table "transitions"}} AND {{tableAs "transitions" "_v3_new"}}{{.OnCluster}}`,
			// Leftovers of an interrupted run first: an old table not yet
			// emptied.
			`{{skipUnlessExists "transitions" "_v2_old"}}ALTER TABLE {{tableAs "transitions" "_v2_old"}}{{.OnCluster}} MOVE PARTITION ID {{eachPartition "transitions" "_v2_old"}} TO TABLE {{table "transitions"}}`,
			`{{skipIfNotEmpty "transitions" "_v2_old"}}DROP TABLE IF EXISTS {{tableAs "transitions" "_v2_old"}}{{.OnCluster}}`,
			// After the exchange, _v3_new holds the old rows: rename it out of
			// the way, move its parts, drop it.
			`{{skipUnlessExists "transitions" "_v3_new"}}RENAME TABLE {{tableAs "transitions" "_v3_new"}} TO {{tableAs "transitions" "_v2_old"}}{{.OnCluster}}`,
			`{{skipUnlessExists "transitions" "_v2_old"}}ALTER TABLE {{tableAs "transitions" "_v2_old"}}{{.OnCluster}} MOVE PARTITION ID {{eachPartition "transitions" "_v2_old"}} TO TABLE {{table "transitions"}}`,
			`{{skipIfNotEmpty "transitions" "_v2_old"}}DROP TABLE IF EXISTS {{tableAs "transitions" "_v2_old"}}{{.OnCluster}}`,
			// Done only when transitions has the version and nothing is left.
			`SELECT throwIf(
    (SELECT count() FROM system.tables WHERE database = {{.DBString}} AND name = '{{physicalName "transitions"}}' AND engine_full LIKE '%MergeTree(%state_rank)%') != 1
    OR (SELECT count() FROM system.tables WHERE database = {{.DBString}} AND name IN ('{{physicalName "transitions"}}_v3_new', '{{physicalName "transitions"}}_v2_old')) != 0,
    'the rebuild of transitions is not complete yet (rows still moving, or another migrator is at work): Up will retry')`,
		},
	},
	{
		Version: 4,
		Name:    "duration digests: transitions carry the time in from_state and the event's age, durations_minute holds per-minute deduplicated histograms",
		Statements: []string{
			// Filled by the exporter from the span (0 = unknown); older rows
			// read 0 and feed no digest. Small integers: T64 crops them.
			`ALTER TABLE {{table "transitions"}}{{.OnCluster}}
    ADD COLUMN IF NOT EXISTS from_state_ns UInt64 DEFAULT 0 CODEC(T64, ZSTD(1)),
    ADD COLUMN IF NOT EXISTS event_ns UInt64 DEFAULT 0 CODEC(T64, ZSTD(1))`,
			`{{if clustered}}ALTER TABLE {{name "transitions"}}{{.OnCluster}}
    ADD COLUMN IF NOT EXISTS from_state_ns UInt64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS event_ns UInt64 DEFAULT 0{{end}}`,

			// Per minute and kind, a log-scale histogram (bins 2% apart) whose
			// every bin is a uniqExact set of cityHash64(request_id, seq): a
			// re-delivered transition counts once, as in stats_minute, and a
			// percentile read is one row per (function, minute, kind) however
			// many events there were.
			`CREATE TABLE IF NOT EXISTS {{table "durations_minute"}}{{.OnCluster}}
(
    tenant    LowCardinality(String),
    namespace LowCardinality(String),
    function  LowCardinality(String),
    qualifier LowCardinality(String),
    bucket    DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    kind      LowCardinality(String),
    digest    AggregateFunction(uniqExactMap, Map(UInt16, UInt64))
)
ENGINE = {{engine "AggregatingMergeTree" ""}}
PARTITION BY toDate(bucket)
ORDER BY (tenant, namespace, function, qualifier, bucket, kind)
{{ttl "bucket"}}
{{settings "ttl_only_drop_parts = 1, index_granularity = 8192"}}`,
			`{{distributed "durations_minute" ""}}`,

			// A duration belongs to the minute of the transition that ends
			// it. Queue wait: QUEUED -> RUNNING; run: RUNNING -> next (per
			// attempt); retry delay: RETRYING -> RUNNING; end to end: the
			// first transition -> the terminal one.
			`CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "durations_minute_mv"}}{{.OnCluster}} TO {{table "durations_minute"}} AS
SELECT
    tenant, namespace, function, qualifier,
    toStartOfMinute(toDateTime(time, 'UTC')) AS bucket,
    k.1 AS kind,
    uniqExactMapState(map({{digestBin "k.2"}}, cityHash64(request_id, seq))) AS digest
FROM {{table "transitions"}}
ARRAY JOIN [
    (multiIf(from_state = {{st "QUEUED"}} AND to_state = {{st "RUNNING"}}, 'queue_wait',
             from_state = {{st "RUNNING"}}, 'run',
             from_state = {{st "RETRYING"}} AND to_state = {{st "RUNNING"}}, 'retry_delay', ''), from_state_ns),
    (if(to_state IN {{terminalStates}}, 'end_to_end', ''), event_ns)
] AS k
WHERE k.1 != '' AND k.2 > 0
GROUP BY tenant, namespace, function, qualifier, bucket, kind`,
		},
	},
}

// transitionsColumns is the column list of transitions as migration 1
// created it; migration 3 rebuilds the table with the same columns and the
// version. (Checksums cover the rendered SQL, so this constant is pinned
// like the templates that use it.)
const transitionsColumns = `    tenant        LowCardinality(String) CODEC(ZSTD(1)),
    namespace     LowCardinality(String) CODEC(ZSTD(1)),
    function      LowCardinality(String) CODEC(ZSTD(1)),
    qualifier     LowCardinality(String) CODEC(ZSTD(1)),
    request_id    String CODEC(ZSTD(6)),
    seq           UInt64 CODEC(T64, ZSTD(1)),
    attempt       UInt32 CODEC(T64, ZSTD(1)),
    from_state    LowCardinality(String) CODEC(ZSTD(1)),
    to_state      LowCardinality(String) CODEC(ZSTD(1)),
    time          DateTime64(9, 'UTC') CODEC(T64, ZSTD(1)),
    error_code    LowCardinality(String) CODEC(ZSTD(1)),
    error_message String CODEC(ZSTD(3)),
    invoke_type   LowCardinality(String) CODEC(ZSTD(1)),
    node          LowCardinality(String) CODEC(ZSTD(1)),
    trace_id      FixedString(16) CODEC(ZSTD(1)),
    -- The plugin derives a transition's span ID from (request_id, seq)
    -- (plugin/spans.TransitionSpanID), so it is not stored: span_id computes
    -- it, and span_id_override holds only IDs that differ (spans from another
    -- producer). Zero bytes cost nothing, and 8 random bytes a row were a
    -- fifth of the table.
    span_id_override FixedString(8) CODEC(ZSTD(1)),
    span_id       FixedString(8) ALIAS if(span_id_override != unhex('0000000000000000'), span_id_override,
        toFixedString(substring(SHA256(concat('statustrace/transition\0', request_id, '\0', reverse(reinterpretAsFixedString(seq)))), 1, 8), 8))`

// ttlTables lists the physical tables whose TTL follows the retention, with
// the time expression the TTL is computed from.
var ttlTables = []struct{ name, expr string }{
	{"transitions", "toDateTime(time)"},
	{"events", "toDateTime(last_time)"},
	{"stats_minute", "bucket"},
	{"durations_minute", "bucket"},
}

// ttlSince is the migration that creates a ttlTables entry, for those that
// migration 1 did not.
var ttlSince = map[string]uint32{"durations_minute": 4}
