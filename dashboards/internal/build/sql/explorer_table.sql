{{- /*
explorer_table: the newest 1000 matching events.
*/ -}}
SELECT request_id, public_status AS status, current_state AS state,
    namespace, function, qualifier, tenant, invoke AS invoke_type, attempt_count AS attempts,
    first_seen, queued_at, ended_at, duration_s,
    error AS error_code, message AS error_message, node_name AS node, trace AS trace_id,
    toUnixTimestamp64Milli(first_seen) - 60000 AS link_from,
    toUnixTimestamp64Milli(last_seen) + 60000 AS link_to
FROM ({{template "_explorer_events.sql" .}}
)
ORDER BY first_seen DESC, request_id
LIMIT 1000
