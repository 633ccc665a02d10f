{{- /*
overview_failure_rate: the failure rate per interval.
*/ -}}
SELECT {{template "_stats_interval.sql" .}} AS time,
    {{template "_failure_rate.sql" .}} AS failure_rate
FROM ({{template "_stats_rows.sql" .}}
)
GROUP BY time
ORDER BY time
