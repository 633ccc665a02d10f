{{- /*
event_trace is the event's trace from otel_traces, in the time window of the
event (the caller's spans may start before it was queued).
*/ -}}
WITH (
    SELECT (replaceRegexpOne(lower(hex(max(trace_id))), '^0{32}$', ''), min(first_time), max(last_time))
    FROM {{.Events}}
    WHERE {{template "_event_scope.sql" .}}
) AS ev
SELECT{{template "_trace_columns.sql" .}}
FROM otel_traces
WHERE TraceId = ev.1
  AND Timestamp >= ev.2 - INTERVAL 1 HOUR
  AND Timestamp <= ev.3 + INTERVAL 10 MINUTE
ORDER BY Timestamp
