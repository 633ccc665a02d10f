{{- /*
event_fields: the event as field/value rows.
*/ -}}
SELECT field, value
FROM (
    SELECT tenant, namespace, function, qualifier, request_id,{{template "_event_columns.sql" .}}
    FROM {{.Events}}
    WHERE {{template "_event_scope.sql" .}}
    GROUP BY tenant, namespace, function, qualifier, request_id
    HAVING last_seen >= {{cutoff}}
)
ARRAY JOIN
    ['request_id', 'status', 'state', 'tenant', 'namespace', 'function', 'qualifier', 'invoke_type', 'attempts',
     'queued_at', 'ended_at', 'duration_s', 'last_error_code', 'last_error_message', 'last_node', 'trace_id'] AS field,
    [request_id, public_status, current_state, toString(tenant), toString(namespace), toString(function),
     toString(qualifier), toString(invoke), toString(attempt_count),
     ifNull(toString(queued_at), ''), ifNull(toString(ended_at), ''), toString(duration_s),
     error, message, node_name, trace] AS value
