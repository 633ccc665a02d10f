{{- /*
event_trace_id: the event's trace ID and a time window around it.
*/ -}}
SELECT trace AS trace_id,
    toUnixTimestamp64Milli(first_seen) - 3600000 AS trace_from,
    toUnixTimestamp64Milli(last_seen) + 600000 AS trace_to
FROM (
    SELECT {{template "_event_columns.sql" .}}
    FROM {{.Events}}
    WHERE {{template "_event_scope.sql" .}}
    GROUP BY tenant, namespace, function, qualifier, request_id
)
WHERE trace != ''
