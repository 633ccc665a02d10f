{{- /*
_event_columns: the columns of one event as the Go package scans them
(scanEvent), in that order, selected from event_list.
*/ -}}
tenant, namespace, function, qualifier, request_id, status, state, invoke_type,
    attempts, last_seq, start_ns, end_ns, last_ns, error_code, error_message, node, trace_id
