{{- /*
overview_failure_rate_now: the failure rate of the whole range.
*/ -}}
SELECT {{template "_failure_rate.sql" .}} AS failure_rate
FROM ({{template "_stats_rows.sql" .}}
)
