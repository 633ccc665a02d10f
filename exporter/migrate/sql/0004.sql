-- Migration 4: duration digests: transitions carry the time in from_state and the event's age, durations_minute holds per-minute deduplicated histograms.
-- Released: frozen. Statements end with a line holding only ";"; the comment
-- lines that open a statement document it and are not sent.

-- Filled by the exporter from the span (0 = unknown); older rows
-- read 0 and feed no digest. Small integers: T64 crops them.
ALTER TABLE {{table "transitions"}}{{.OnCluster}}
    ADD COLUMN IF NOT EXISTS from_state_ns UInt64 DEFAULT 0 CODEC(T64, ZSTD(1)),
    ADD COLUMN IF NOT EXISTS event_ns UInt64 DEFAULT 0 CODEC(T64, ZSTD(1))
;
-- The Distributed table in front of the shards (cluster mode only;
-- renders empty, and is not sent, on a single node).
{{if clustered}}ALTER TABLE {{name "transitions"}}{{.OnCluster}}
    ADD COLUMN IF NOT EXISTS from_state_ns UInt64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS event_ns UInt64 DEFAULT 0{{end}}
;
-- Per minute and kind, a log-scale histogram (bins 2% apart) whose
-- every bin is a uniqExact set of cityHash64(request_id, seq): a
-- re-delivered transition counts once, as in stats_minute, and a
-- percentile read is one row per (function, minute, kind) however
-- many events there were.
CREATE TABLE IF NOT EXISTS {{table "durations_minute"}}{{.OnCluster}}
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
{{settings "ttl_only_drop_parts = 1, index_granularity = 8192"}}
;
{{distributed "durations_minute" ""}}
;
-- A duration belongs to the minute of the transition that ends
-- it. Queue wait: QUEUED -> RUNNING; run: RUNNING -> next (per
-- attempt); retry delay: RETRYING -> RUNNING; end to end: the
-- first transition -> the terminal one.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "durations_minute_mv"}}{{.OnCluster}} TO {{table "durations_minute"}} AS
SELECT
    tenant, namespace, function, qualifier,
    toStartOfMinute(toDateTime(time, 'UTC')) AS bucket,
    k.1 AS kind,
    uniqExactMapState(map({{digestBin "k.2"}}, cityHash64(request_id, seq))) AS digest
FROM {{table "transitions"}}
ARRAY JOIN [
    (multiIf(from_state = {{state "queued"}} AND to_state = {{state "running"}}, {{durationKind "queue_wait"}},
             from_state = {{state "running"}}, {{durationKind "run"}},
             from_state = {{state "retrying"}} AND to_state = {{state "running"}}, {{durationKind "retry_delay"}}, ''), from_state_ns),
    (if({{isTerminal "to_state"}}, {{durationKind "end_to_end"}}, ''), event_ns)
] AS k
WHERE k.1 != '' AND k.2 > 0
GROUP BY tenant, namespace, function, qualifier, bucket, kind
;
