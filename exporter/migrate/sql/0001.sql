-- Migration 1: transitions, events and per-minute stats with their materialized views.
-- Released: frozen. Statements end with a line holding only ";"; the comment
-- lines that open a statement document it and are not sent.

-- Raw transitions. ReplacingMergeTree keyed by (tenant, request_id,
-- seq): a re-delivered transition collapses on merge, FINAL/LIMIT 1 BY
-- hides it before. The key also makes a request_id lookup a primary
-- key range. Codecs were chosen by measurement (exporter/README.md,
-- "Storage"): ZSTD on the LowCardinality index streams, T64 for
-- times and small integers.
CREATE TABLE IF NOT EXISTS {{table "transitions"}}{{.OnCluster}}
(
{{transitionsColumns}}
)
ENGINE = {{engine "ReplacingMergeTree" ""}}
PARTITION BY toDate(time)
ORDER BY (tenant, request_id, seq)
{{ttl "toDateTime(time)"}}
{{settings "ttl_only_drop_parts = 1, index_granularity = 8192"}}
;
{{distributed "transitions" "cityHash64(tenant, request_id)"}}
;
-- Current status per event. Every column is an idempotent aggregate,
-- so re-delivered transitions change nothing and readers that GROUP BY
-- the key are right whether or not merges ran.
CREATE TABLE IF NOT EXISTS {{table "events"}}{{.OnCluster}}
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
{{settings "ttl_only_drop_parts = 1, index_granularity = 8192"}}
;
{{distributed "events" ""}}
;
-- Per-minute statistics. A uniqExact state over the 64-bit hash of
-- (request_id, seq) counts a re-delivered transition once, however the
-- duplicate was batched (exact up to a 64-bit hash collision: below
-- 1e-7 for a million transitions in one row); a statistics query reads
-- one row per (function, minute, state, error code).
CREATE TABLE IF NOT EXISTS {{table "stats_minute"}}{{.OnCluster}}
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
{{settings "ttl_only_drop_parts = 1, index_granularity = 8192"}}
;
{{distributed "stats_minute" ""}}
;
-- Settings the query side needs (the retention in force).
CREATE TABLE IF NOT EXISTS {{name "settings"}}{{.OnCluster}}
(
    name       LowCardinality(String),
    value      String,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = {{globalEngine "ReplacingMergeTree" "updated_at"}}
ORDER BY name
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "events_mv"}}{{.OnCluster}} TO {{table "events"}} AS
SELECT
    tenant, namespace, function, qualifier, request_id,
    argMaxState(CAST(to_state, 'String'), (seq, {{stateRank "to_state"}})) AS state,
    max(seq) AS last_seq,
    max(attempt) AS attempts,
    min(time) AS first_time,
    max(time) AS last_time,
    minOrNullIf(time, to_state = {{state "queued"}}) AS start_time,
    maxOrNullIf(time, {{isTerminal "to_state"}}) AS end_time,
    argMaxState(CAST(error_code, 'String'), (toUInt8(error_code != '' OR error_message != ''), seq)) AS last_error_code,
    argMaxState(error_message, (toUInt8(error_code != '' OR error_message != ''), seq)) AS last_error_message,
    argMaxState(CAST(node, 'String'), seq) AS last_node,
    any(invoke_type) AS invoke_type,
    max(trace_id) AS trace_id
FROM {{table "transitions"}}
GROUP BY tenant, namespace, function, qualifier, request_id
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "stats_minute_mv"}}{{.OnCluster}} TO {{table "stats_minute"}} AS
SELECT
    tenant, namespace, function, qualifier,
    toStartOfMinute(toDateTime(time, 'UTC')) AS bucket,
    to_state, error_code,
    uniqExactState(cityHash64(request_id, seq)) AS transitions
FROM {{table "transitions"}}
GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code
;
