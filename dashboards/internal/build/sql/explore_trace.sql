{{- /*
explore_trace shows one trace, whose ID the data link inlines in place of
XXTRACEIDXX (a hex string, safe in SQL and URLs).
*/ -}}
SELECT{{template "_trace_columns.sql" .}}
FROM otel_traces
WHERE TraceId = 'XXTRACEIDXX' AND $__timeFilter(Timestamp)
ORDER BY Timestamp
