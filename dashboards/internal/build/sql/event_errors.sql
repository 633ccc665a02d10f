{{- /*
event_errors: transitions that carried an error.
*/ -}}
SELECT time, seq, attempt, from_state, to_state, error_code, error_message, node
FROM {{template "_event_transitions.sql" .}}
WHERE error_code != '' OR error_message != ''
ORDER BY seq
