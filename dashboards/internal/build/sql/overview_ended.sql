{{- /*
overview_ended: events accepted and events that reached each terminal state in the range.
*/ -}}
SELECT
    sumIf(n, to_state = {{state "queued"}}) AS accepted
{{- range terminalStates}},
    sumIf(n, to_state = {{state .}}) AS {{.}}
{{- end}}
FROM ({{template "_stats_rows.sql" .}}
)
