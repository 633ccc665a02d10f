{{- /*
_event_transitions are the event's transitions, deduplicated. span_id is
named because * leaves out ALIAS columns.
*/ -}}
(
    SELECT *, span_id
    FROM {{.Transitions}}
    WHERE {{template "_event_scope.sql" .}}
      AND time >= {{cutoff}}
    ORDER BY seq, time
    LIMIT 1 BY tenant, request_id, seq
)