-- event_status: the current status of one event.
--
--   SELECT * FROM event_status(tenant = 't1', namespaces = [], request_id = 'req-1')
--
-- Parameters:
--   tenant      String         the caller's tenant
--   namespaces  Array(String)  namespaces the caller may see ([] = all)
--   request_id  String         the event
--
-- One row, or none when the event is unknown, belongs to another tenant or
-- namespace, or is older than the retention window. Computed from the event's
-- own transitions, deduplicated by seq (a re-delivered transition counts
-- once; two different states with one seq resolve as the events table does:
-- terminal over non-terminal, then later over earlier). The current state is
-- the one with the highest seq, however late it arrived. Reads one primary-key
-- range of transitions (ORDER BY tenant, request_id, seq): the cost does not
-- grow with the table. (The Go package runs it joined with event_timeline:
-- event_get.)
--
-- Columns: tenant, namespace, function, qualifier, request_id,
--   status (RUNNING | FINISHED | FAILED | ABORTED), state (detailed),
--   invoke_type, attempts, last_seq, transitions, errors (transitions that
--   carried an error), start_time (QUEUED time, else the first seen),
--   end_time (terminal time, NULL while running), last_time, error_code and
--   error_message (the latest error), node (of the latest transition),
--   trace_id (hex), start_ns / end_ns (0 while running) / last_ns (Int64 ns).
SELECT
    tenant,
    a_namespace AS namespace,
    a_function AS function,
    a_qualifier AS qualifier,
    request_id,
    {{publicStatus "a_state"}} AS status,
    a_state AS state,
    a_invoke_type AS invoke_type,
    a_attempts AS attempts,
    a_last_seq AS last_seq,
    a_transitions AS transitions,
    a_errors AS errors,
    ifNull(a_queued, a_first) AS start_time,
    a_end AS end_time,
    a_last AS last_time,
    a_error_code AS error_code,
    a_error_message AS error_message,
    a_node AS node,
    lower(hex(a_trace)) AS trace_id,
    toUnixTimestamp64Nano(ifNull(a_queued, a_first)) AS start_ns,
    ifNull(toUnixTimestamp64Nano(a_end), 0) AS end_ns,
    toUnixTimestamp64Nano(a_last) AS last_ns
FROM
(
    SELECT
        tenant,
        request_id,
        argMax(namespace, seq) AS a_namespace,
        argMax(function, seq) AS a_function,
        argMax(qualifier, seq) AS a_qualifier,
        argMax(to_state, seq) AS a_state,
        any(invoke_type) AS a_invoke_type,
        max(attempt) AS a_attempts,
        max(seq) AS a_last_seq,
        count() AS a_transitions,
        countIf(error_code != '' OR error_message != '') AS a_errors,
        min(time) AS a_first,
        max(time) AS a_last,
        minOrNullIf(time, to_state = {{state "queued"}}) AS a_queued,
        maxOrNullIf(time, {{isTerminal "to_state"}}) AS a_end,
        argMaxIf(error_code, seq, error_code != '' OR error_message != '') AS a_error_code,
        argMaxIf(error_message, seq, error_code != '' OR error_message != '') AS a_error_message,
        argMax(node, seq) AS a_node,
        max(trace_id) AS a_trace
    FROM
    (
        SELECT
            tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state, time,
            error_code, error_message, invoke_type, node, trace_id
        FROM {{.Transitions}}
        WHERE {{template "_scope.sql" .}}
          AND request_id = {request_id:String}
          AND time >= {{cutoff}}
        ORDER BY seq ASC, {{stateRank "to_state"}} DESC
        LIMIT 1 BY seq
    )
    GROUP BY tenant, request_id
) AS per_event
