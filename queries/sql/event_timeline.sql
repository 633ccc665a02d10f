-- event_timeline: every state change of one event, oldest first.
--
--   SELECT * FROM event_timeline(tenant = 't1', namespaces = [], request_id = 'req-1')
--
-- Parameters: tenant, namespaces, request_id (as event_status).
--
-- One row per seq: duplicates (re-delivered transitions) appear once, late
-- arrivals take their place by seq, and when two rows claim one seq the one
-- the current status is computed from wins (terminal over non-terminal, then
-- later over earlier). Transitions older than the retention window are not
-- shown. Reads one primary-key range of transitions.
--
-- Columns: tenant, namespace, function, qualifier, request_id, seq,
--   attempt, from_state, to_state, time, time_ns (Int64),
--   in_state_ns (time spent in from_state: time minus the previous
--   transition's time; 0 when the previous one is not known), error_code,
--   error_message, node, invoke_type, trace_id and span_id (hex).
SELECT
    tenant,
    namespace,
    function,
    qualifier,
    request_id,
    seq,
    attempt,
    from_state,
    to_state,
    time,
    toUnixTimestamp64Nano(time) AS time_ns,
    if(prev_to_state = from_state AND from_state != '', toUInt64(greatest(time_ns - prev_ns, 0)), 0) AS in_state_ns,
    error_code,
    error_message,
    node,
    invoke_type,
    lower(hex(trace_id)) AS trace_id,
    lower(hex(span_id)) AS span_id
FROM
(
    SELECT
        *,
        lagInFrame(to_state) OVER w AS prev_to_state,
        lagInFrame(toUnixTimestamp64Nano(time)) OVER w AS prev_ns
    FROM
    (
        SELECT
            tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state, time,
            error_code, error_message, invoke_type, node, trace_id, span_id
        FROM {{.Transitions}}
        WHERE {{template "_scope.sql" .}}
          AND request_id = {request_id:String}
          AND time >= {{cutoff}}
        ORDER BY seq ASC, {{stateRank "to_state"}} DESC
        LIMIT 1 BY seq
    )
    WINDOW w AS (ORDER BY seq ASC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
)
ORDER BY seq
