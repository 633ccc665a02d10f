-- Migration 7: transitions_minute: one set of transition hashes per minute, state and error code serves the counts and the duration digests (stats_minute and durations_minute dropped).
-- Released: frozen. Statements end with a line holding only ";"; the comment
-- lines that open a statement document it and are not sent.

-- stats_minute and durations_minute each kept a uniqExact set of
-- cityHash64(request_id, seq), one 64-bit hash per transition written
-- in hash-table order, which does not compress (8 + 6 bytes of the
-- status tables' ~41 per transition), and building those sets was
-- most of what the two views cost an insert. transitions_minute keeps
-- each hash once, as the key of a maxMap whose value is the
-- transition's duration key (schema.DurationKeyExpr: the step kind and
-- bin, the end-to-end flag and bin): per row, the sorted hashes and
-- their keys. A re-delivered transition has the same hash and key, so
-- merges keep one entry; a row's count is the number of hashes, a
-- kind's histogram the count of keys per bin. Sorted hashes compress
-- (T64 crops the bits consecutive ones share), and a maxMap is cheaper
-- to build than a hash set.
CREATE TABLE IF NOT EXISTS {{table "transitions_minute"}}{{.OnCluster}}
(
    tenant      LowCardinality(String),
    namespace   LowCardinality(String),
    function    LowCardinality(String),
    qualifier   LowCardinality(String),
    bucket      DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    to_state    LowCardinality(String),
    error_code  LowCardinality(String),
    transitions SimpleAggregateFunction(maxMap, Tuple(Array(UInt64), Array(UInt32))) CODEC(T64, ZSTD(1))
)
ENGINE = {{engine "AggregatingMergeTree" ""}}
PARTITION BY toDate(bucket)
ORDER BY (tenant, namespace, function, qualifier, bucket, to_state, error_code)
{{ttl "bucket"}}
{{settings "ttl_only_drop_parts = 1, index_granularity = 8192"}}
;
{{distributed "transitions_minute" ""}}
;
-- The view first, then the rows already stored: a transition inserted
-- while this runs may reach the table twice (through the view and the
-- backfill), and its hash counts once.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{name "transitions_minute_mv"}}{{.OnCluster}} TO {{table "transitions_minute"}} AS
{{fragment "stats_select"}}
GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code
;
-- Backfill from transitions, which has the same retention, one day
-- partition at a time (bounded memory; a resumed run repeats
-- partitions harmlessly). In cluster mode this fills the shard of the
-- node that runs it: with ON CLUSTER, run Up once against a node of
-- every shard (per-node mode migrates every node anyway).
INSERT INTO {{table "transitions_minute"}}
{{fragment "stats_select"}}
WHERE _partition_id = {{eachPartition "transitions" ""}}
GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code
;
-- The old views and tables: nothing reads them any more.
DROP VIEW IF EXISTS {{name "stats_minute_mv"}}{{.OnCluster}}
;
DROP VIEW IF EXISTS {{name "durations_minute_mv"}}{{.OnCluster}}
;
{{if clustered}}DROP TABLE IF EXISTS {{name "stats_minute"}}{{.OnCluster}}{{end}}
;
{{if clustered}}DROP TABLE IF EXISTS {{name "durations_minute"}}{{.OnCluster}}{{end}}
;
DROP TABLE IF EXISTS {{table "stats_minute"}}{{.OnCluster}}
;
DROP TABLE IF EXISTS {{table "durations_minute"}}{{.OnCluster}}
;
