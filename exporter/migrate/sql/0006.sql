-- Migration 6: events: the current state, last error and node as plain maxima, one row per transition (no aggregate states on insert).
-- Released: frozen. Statements end with a line holding only ";"; the comment
-- lines that open a statement document it and are not sent.

-- The events view was the costliest part of every insert: it grouped
-- each block by event and built four argMax states per group (an
-- insert into the tables with only that view ran at about half the
-- rate of one with none). The same answers as SimpleAggregateFunction
-- maxima over ordered values, which need neither the grouping nor the
-- states:
--   state_key = seq * 256 + state rank (event.SQLStateKey): its max
--     is the argMax by (seq, rank) the state column kept;
--   error_at = (has an error, seq, code, message): its max is the
--     latest error, as argMax by (has an error, seq) was;
--   node_at = (seq, node): its max is the node of the latest seq.
-- Rows written before this migration have no such columns: their
-- DEFAULT computes them from that row's aggregate states (metadata
-- only; merges store them). An old row's error and node take the
-- row's last_seq as their seq, which orders them right against every
-- newer row, and only two unmerged old rows of one event, each with
-- an error, can pick the earlier one (until the 3-day TTL).
ALTER TABLE {{table "events"}}{{.OnCluster}}
    ADD COLUMN IF NOT EXISTS state_key SimpleAggregateFunction(max, UInt64)
        DEFAULT {{stateKey "last_seq" "finalizeAggregation(state)"}} CODEC(T64, ZSTD(1)),
    ADD COLUMN IF NOT EXISTS error_at SimpleAggregateFunction(max, Tuple(UInt8, UInt64, String, String))
        DEFAULT (toUInt8(finalizeAggregation(last_error_code) != '' OR finalizeAggregation(last_error_message) != ''), last_seq,
                 finalizeAggregation(last_error_code), finalizeAggregation(last_error_message)) CODEC(ZSTD(3)),
    ADD COLUMN IF NOT EXISTS node_at SimpleAggregateFunction(max, Tuple(UInt64, String))
        DEFAULT (last_seq, finalizeAggregation(last_node)) CODEC(ZSTD(3))
;
-- The Distributed table's copy of the columns (cluster mode only;
-- renders empty, and is not sent, on a single node).
{{if clustered}}ALTER TABLE {{name "events"}}{{.OnCluster}}
    ADD COLUMN IF NOT EXISTS state_key SimpleAggregateFunction(max, UInt64),
    ADD COLUMN IF NOT EXISTS error_at SimpleAggregateFunction(max, Tuple(UInt8, UInt64, String, String)),
    ADD COLUMN IF NOT EXISTS node_at SimpleAggregateFunction(max, Tuple(UInt64, String)){{end}}
;
-- One row per transition, every column an idempotent aggregate of
-- it: merges fold an event's rows as before, readers group as before.
-- The argMax columns are left to their default (an empty state) and
-- no longer read. MODIFY QUERY swaps the query atomically: no insert
-- misses it, and rows inserted between the two statements got their
-- new columns from the DEFAULT above.
ALTER TABLE {{name "events_mv"}}{{.OnCluster}} MODIFY QUERY
SELECT
    tenant, namespace, function, qualifier, request_id,
    {{stateKey "seq" "to_state"}} AS state_key,
    seq AS last_seq,
    attempt AS attempts,
    toDateTime64(toStartOfMillisecond(time), 9, 'UTC') AS first_time,
    toDateTime64(toStartOfMillisecond(time), 9, 'UTC') AS last_time,
    if(to_state = {{state "queued"}}, toDateTime64(toStartOfMillisecond(time), 9, 'UTC'), NULL) AS start_time,
    if({{isTerminal "to_state"}}, toDateTime64(toStartOfMillisecond(time), 9, 'UTC'), NULL) AS end_time,
    (toUInt8(error_code != '' OR error_message != ''), seq, CAST(error_code, 'String'), error_message) AS error_at,
    (seq, CAST(node, 'String')) AS node_at,
    invoke_type,
    trace_id
FROM {{table "transitions"}}
;
