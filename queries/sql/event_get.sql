-- event_get (named query, run by the Go package): an event for Get, in one
-- round trip: every row of event_timeline (its transitions, by seq) carrying
-- the event's columns from event_status, so the status rules live once, in
-- event_status. Both read one primary-key range of transitions.
SELECT
    s.tenant, s.namespace, s.function, s.qualifier, s.request_id, s.status, s.state, s.invoke_type,
    s.attempts, s.last_seq, s.start_ns, s.end_ns, s.last_ns, s.error_code, s.error_message, s.node, s.trace_id,
    s.transitions, s.errors,
    t.seq, t.attempt, t.from_state, t.to_state, t.time_ns, t.in_state_ns,
    t.error_code, t.error_message, t.node, t.span_id
FROM
(
{{template "event_timeline.sql" .}}
) AS t
CROSS JOIN
(
{{template "event_status.sql" .}}
) AS s
ORDER BY t.seq ASC
