{{- /*
_event_columns read one event's current row from events (grouped by its
key); the public status comes from package event like the API's.
*/}}
        argMaxMerge(state) AS current_state,
        {{publicStatus "current_state"}} AS public_status,
        max(attempts) AS attempt_count,
        min(first_time) AS first_seen,
        max(last_time) AS last_seen,
        min(start_time) AS queued_at,
        max(end_time) AS ended_at,
        dateDiff('millisecond', ifNull(queued_at, first_seen), ifNull(ended_at, now64(9))) / 1000 AS duration_s,
        argMaxMerge(last_error_code) AS error,
        argMaxMerge(last_error_message) AS message,
        argMaxMerge(last_node) AS node_name,
        any(invoke_type) AS invoke,
        replaceRegexpOne(lower(hex(max(trace_id))), '^0{32}$', '') AS trace