-- transitions_export (named query, run by the Go package):
-- transitions_window's rows in the order ExportTransitions scans them.
SELECT
    tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state,
    time_ns, error_code, error_message, invoke_type, node, trace_id, span_id
FROM
(
{{template "transitions_window.sql" .}}
)
