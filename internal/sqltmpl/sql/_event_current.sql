{{- /*
_event_current: the current row of one event, read from the events table by
a query that groups by its key (tenant, namespace, function, qualifier,
request_id): every aggregate column with its reader (internal/schema), so the
API's lists and the dashboards read events alike. Shared by every template
set (internal/sqltmpl). Columns: e_state (detailed; the public status is
{{publicStatus "e_state"}}), e_last_seq, e_attempts, e_first, e_last,
e_queued (QUEUED time), e_end (terminal time, NULL while running),
e_error_code, e_error_message (the latest error), e_node, e_invoke_type,
e_trace (FixedString(16)).
*/ -}}
{{stateOfKey "max(state_key)"}} AS e_state,
        max(last_seq) AS e_last_seq,
        max(attempts) AS e_attempts,
        min(first_time) AS e_first,
        max(last_time) AS e_last,
        min(start_time) AS e_queued,
        max(end_time) AS e_end,
        tupleElement(max(error_at), 3) AS e_error_code,
        tupleElement(max(error_at), 4) AS e_error_message,
        tupleElement(max(node_at), 2) AS e_node,
        any(invoke_type) AS e_invoke_type,
        max(trace_id) AS e_trace
