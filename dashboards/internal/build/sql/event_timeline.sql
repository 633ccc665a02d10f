{{- /*
event_timeline: the event's states over time.
*/ -}}
SELECT time, to_state AS state
FROM {{template "_event_transitions.sql" .}}
ORDER BY time, seq
