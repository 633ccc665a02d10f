{{- /*
overview_transitions: exact transition counts into each state per interval.
*/ -}}
SELECT {{template "_stats_interval.sql" .}} AS time, to_state, sum(n) AS transitions
FROM ({{template "_stats_rows.sql" .}}
)
WHERE {{template "_status_filter.sql" "to_state"}}
GROUP BY time, to_state
ORDER BY time, to_state
