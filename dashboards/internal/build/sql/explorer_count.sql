{{- /*
explorer_count: the matching events, by public status.
*/ -}}
SELECT count() AS events
{{- range publicStatuses}},
    countIf(public_status = {{public .}}) AS {{.}}
{{- end}}
FROM ({{template "_explorer_events.sql" .}}
)
