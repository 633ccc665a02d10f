-- Migration 8: transitions: from_state_ns and event_ns expire at once (column TTL): the view reads them on insert, nothing reads them after.
-- Released: frozen. Statements end with a line holding only ";"; the comment
-- lines that open a statement document it and are not sent.

-- The two durations exist for transitions_minute_mv, which reads them
-- from the insert block; no query reads them from the table, and
-- from_state_ns (random nanoseconds) was 4.2 of the status tables'
-- bytes per transition. A column TTL that has expired when the row is
-- written empties them at the part's next TTL merge (at most
-- merge_with_ttl_timeout, 4 h by default, after the insert): a wide
-- part drops the column's files, a compact one stores zeros. Inserts
-- and the view are unchanged. materialize_ttl_after_modify = 0: no
-- mutation rewrites the parts already stored; they lose the values
-- when merges next rewrite them.
ALTER TABLE {{table "transitions"}}{{.OnCluster}}
    MODIFY COLUMN from_state_ns UInt64 DEFAULT 0 CODEC(T64, ZSTD(1)) TTL toDateTime(time),
    MODIFY COLUMN event_ns UInt64 DEFAULT 0 CODEC(T64, ZSTD(1)) TTL toDateTime(time)
SETTINGS materialize_ttl_after_modify = 0
;
