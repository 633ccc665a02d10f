-- Migration 3: transitions: same (tenant, request_id, seq) keeps the higher-ranked state on merge (version column state_rank).
-- Released: frozen. Statements end with a line holding only ";"; the comment
-- lines that open a statement document it and are not sent.

-- Two rows can claim one seq with different states (a retried report
-- after a terminate, a buggy producer). events keeps the one with the
-- higher state rank (argMax by (seq, rank)); transitions, a
-- ReplacingMergeTree without a version, kept whichever was inserted
-- last once parts merged, so a lookup's timeline and the list could
-- disagree for good. The version column makes the merge keep the
-- same row the view keeps.
--
-- A table's engine cannot be altered, so transitions is rebuilt in
-- place, rows kept and no insert lost: a new table with the version
-- is swapped in atomically (EXCHANGE TABLES: inserts and the
-- materialized views follow the name), then the old table's parts
-- are moved into it partition by partition (metadata only: no row is
-- rewritten, and the views are not fed twice), and the emptied old
-- table is dropped. Migrators take turns (the migration lock, see
-- lock.go); steps that cannot be idempotent are guarded, so an
-- interrupted run is finished by the next Up; the last statement
-- fails (and Up retries later) unless the rebuild is complete. A
-- part that an insert started before the swap commits to the old
-- table after the move is moved by that retry, never dropped: the
-- old table is dropped only when empty (only an insert that commits
-- between that check and the drop, microseconds, could be lost).
-- The old table gets the column too (computed from to_state for
-- rows written before: metadata only), so that its parts fit the
-- new table.
ALTER TABLE {{table "transitions"}}{{.OnCluster}}
    ADD COLUMN IF NOT EXISTS state_rank UInt8 MATERIALIZED {{stateRank "to_state"}} CODEC(ZSTD(1))
;
{{skipIfVersioned "transitions" "state_rank"}}CREATE TABLE IF NOT EXISTS {{tableAs "transitions" "_v3_new"}}{{.OnCluster}}
(
{{transitionsColumns}},
    -- The version: the state rank the events view breaks same-seq ties
    -- with (terminal over non-terminal, then later over earlier).
    state_rank    UInt8 MATERIALIZED {{stateRank "to_state"}} CODEC(ZSTD(1))
)
ENGINE = {{engine "ReplacingMergeTree" "state_rank"}}
PARTITION BY toDate(time)
ORDER BY (tenant, request_id, seq)
{{ttl "toDateTime(time)"}}
{{settings "ttl_only_drop_parts = 1, index_granularity = 8192"}}
;
{{skipIfVersioned "transitions" "state_rank"}}EXCHANGE TABLES {{table "transitions"}} AND {{tableAs "transitions" "_v3_new"}}{{.OnCluster}}
;
-- Leftovers of an interrupted run first: an old table not yet
-- emptied.
{{skipUnlessExists "transitions" "_v2_old"}}ALTER TABLE {{tableAs "transitions" "_v2_old"}}{{.OnCluster}} MOVE PARTITION ID {{eachPartition "transitions" "_v2_old"}} TO TABLE {{table "transitions"}}
;
{{skipIfNotEmpty "transitions" "_v2_old"}}DROP TABLE IF EXISTS {{tableAs "transitions" "_v2_old"}}{{.OnCluster}}
;
-- After the exchange, _v3_new holds the old rows: rename it out of
-- the way, move its parts, drop it.
{{skipUnlessExists "transitions" "_v3_new"}}RENAME TABLE {{tableAs "transitions" "_v3_new"}} TO {{tableAs "transitions" "_v2_old"}}{{.OnCluster}}
;
{{skipUnlessExists "transitions" "_v2_old"}}ALTER TABLE {{tableAs "transitions" "_v2_old"}}{{.OnCluster}} MOVE PARTITION ID {{eachPartition "transitions" "_v2_old"}} TO TABLE {{table "transitions"}}
;
{{skipIfNotEmpty "transitions" "_v2_old"}}DROP TABLE IF EXISTS {{tableAs "transitions" "_v2_old"}}{{.OnCluster}}
;
-- Done only when transitions has the version and nothing is left.
SELECT throwIf(
    (SELECT count() FROM system.tables WHERE database = {{.DBString}} AND name = '{{physicalName "transitions"}}' AND engine_full LIKE '%MergeTree(%state_rank)%') != 1
    OR (SELECT count() FROM system.tables WHERE database = {{.DBString}} AND name IN ('{{physicalName "transitions"}}_v3_new', '{{physicalName "transitions"}}_v2_old')) != 0,
    'the rebuild of transitions is not complete yet (rows still moving, or another migrator is at work): Up will retry')
;
