{{- /*
event_transitions: every state change in seq order.
*/ -}}
SELECT seq, time, from_state, to_state,
    dateDiff('millisecond', lagInFrame(time, 1, time) OVER (ORDER BY seq ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), time) / 1000 AS in_from_state_s,
    attempt, error_code, error_message, node, invoke_type, lower(hex(span_id)) AS span
FROM {{template "_event_transitions.sql" .}}
ORDER BY seq
