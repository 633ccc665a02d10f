-- Migration 13: transitions: ZSTD(6) instead of ZSTD(9) on the low-cardinality columns and state_rank (cheaper inserts, same bytes within 0.1 per transition).
-- Released: frozen. Statements end with a line holding only ";"; the comment
-- lines that open a statement document it and are not sent.

-- Migration 10 took these seven columns to ZSTD(9), reckoning that a
-- stronger level costs an insert next to nothing. Measured later on the
-- embedded engine (native chDB, the benchmark's 10,000-row batches
-- inserted from a file into copies of transitions without views, merges
-- stopped, 40 inserts per level in rotation, mean ms): 29.3 at ZSTD(9),
-- 27.1 at 8, 23.0 at 7, 21.4 at 6, 21.0 at 5, 20.4 at 3, 21.0 at 1.
-- An insert compresses one small block per column, and from level 8
-- zstd searches harder in every block; a merge pays that on far fewer,
-- larger blocks. On disk (1M spans, OPTIMIZE FINAL) level 6 gives back
-- 0.07 B per transition of what level 9 saved (transitions 12.42 ->
-- 12.49, all tables 30.0 -> 30.1). Changing a codec is metadata only:
-- parts keep theirs until merged. TestCodecLevelsOnEngine keeps every
-- column at level 7 or below.
ALTER TABLE {{table "transitions"}}{{.OnCluster}}
    MODIFY COLUMN function   LowCardinality(String) CODEC(ZSTD(6)),
    MODIFY COLUMN qualifier  LowCardinality(String) CODEC(ZSTD(6)),
    MODIFY COLUMN from_state LowCardinality(String) CODEC(ZSTD(6)),
    MODIFY COLUMN to_state   LowCardinality(String) CODEC(ZSTD(6)),
    MODIFY COLUMN error_code LowCardinality(String) CODEC(ZSTD(6)),
    MODIFY COLUMN node       LowCardinality(String) CODEC(ZSTD(6)),
    MODIFY COLUMN state_rank UInt8 MATERIALIZED {{stateRank "to_state"}} CODEC(ZSTD(6))
;
