{{- /*
overview_in_flight: events whose current state is not terminal, by state.
*/ -}}
SELECT
{{- range $i, $s := nonTerminalStates}}{{if $i}},{{end}}
    countIf(current_state = {{state $s}}) AS {{$s}}
{{- end}}
FROM (
    SELECT {{stateOfKey "max(state_key)"}} AS current_state
    FROM {{.Events}}
    WHERE {{template "_key_filters.sql" .}}
    GROUP BY tenant, namespace, function, qualifier, request_id
    HAVING max(last_time) >= {{cutoff}}
)
