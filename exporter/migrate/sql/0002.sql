-- Migration 2: events: times at millisecond precision, stored with the GCD codec.
-- Released: frozen. Statements end with a line holding only ";"; the comment
-- lines that open a statement document it and are not sent.

-- The status table's times are what lists filter on (Unix ms in
-- the API) and what Grafana shows; at full nanoseconds each cost
-- ~42 bits of clock noise per event. The columns stay
-- DateTime64(9), as every timestamp in the schema, and hold
-- whole milliseconds; GCD divides a block by 10^6 before T64
-- crops the constant high bits. The exact times stay in
-- transitions, which a lookup's timeline reads. Changing a
-- codec is metadata only (older parts keep theirs until merged),
-- so this is allowed on last_time, a key column.
ALTER TABLE {{table "events"}}{{.OnCluster}}
    MODIFY COLUMN first_time SimpleAggregateFunction(min, DateTime64(9, 'UTC')) CODEC(GCD, T64, ZSTD(1)),
    MODIFY COLUMN last_time  SimpleAggregateFunction(max, DateTime64(9, 'UTC')) CODEC(GCD, T64, ZSTD(1)),
    MODIFY COLUMN start_time SimpleAggregateFunction(min, Nullable(DateTime64(9, 'UTC'))) CODEC(GCD, T64, ZSTD(1)),
    MODIFY COLUMN end_time   SimpleAggregateFunction(max, Nullable(DateTime64(9, 'UTC'))) CODEC(GCD, T64, ZSTD(1))
;
-- The view truncates to the millisecond (commutes with min/max,
-- so old and new rows of one event aggregate consistently).
-- MODIFY QUERY swaps the query atomically: no insert misses it.
ALTER TABLE {{name "events_mv"}}{{.OnCluster}} MODIFY QUERY
SELECT
    tenant, namespace, function, qualifier, request_id,
    argMaxState(CAST(to_state, 'String'), (seq, {{stateRank "to_state"}})) AS state,
    max(seq) AS last_seq,
    max(attempt) AS attempts,
    toDateTime64(toStartOfMillisecond(min(time)), 9, 'UTC') AS first_time,
    toDateTime64(toStartOfMillisecond(max(time)), 9, 'UTC') AS last_time,
    toDateTime64(toStartOfMillisecond(minOrNullIf(time, to_state = {{state "queued"}})), 9, 'UTC') AS start_time,
    toDateTime64(toStartOfMillisecond(maxOrNullIf(time, {{isTerminal "to_state"}})), 9, 'UTC') AS end_time,
    argMaxState(CAST(error_code, 'String'), (toUInt8(error_code != '' OR error_message != ''), seq)) AS last_error_code,
    argMaxState(error_message, (toUInt8(error_code != '' OR error_message != ''), seq)) AS last_error_message,
    argMaxState(CAST(node, 'String'), seq) AS last_node,
    any(invoke_type) AS invoke_type,
    max(trace_id) AS trace_id
FROM {{table "transitions"}}
GROUP BY tenant, namespace, function, qualifier, request_id
;
