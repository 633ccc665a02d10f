{{- /*
_status_filter: the status variable (detailed states, a fixed list) on the
state column given as the template's data: {{template "_status_filter.sql" "to_state"}}.
*/ -}}
$__conditionalAll({{.}} IN (${status:singlequote}), $status)