-- event_get (named query, run by the Go package): event_timeline's rows in
-- the order Get scans them; Get derives the event's status from them with
-- the rules of event_status (package event's), so a lookup reads one range.
SELECT
    tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state,
    time_ns, in_state_ns, error_code, error_message, node, invoke_type, trace_id, span_id
FROM
(
{{template "event_timeline.sql" .}}
)
