{{- /*
_event_columns read one event's current row from events (grouped by its
key) as the API does (_event_current), under the panels' column names; the
public status comes from package event like the API's.
*/}}
        {{template "_event_current.sql" .}},
        e_state AS current_state,
        {{publicStatus "current_state"}} AS public_status,
        e_attempts AS attempt_count,
        e_first AS first_seen,
        e_last AS last_seen,
        e_queued AS queued_at,
        e_end AS ended_at,
        dateDiff('millisecond', ifNull(queued_at, first_seen), ifNull(ended_at, now64(9))) / 1000 AS duration_s,
        e_error_code AS error,
        e_error_message AS message,
        e_node AS node_name,
        e_invoke_type AS invoke,
        replaceRegexpOne(lower(hex(e_trace)), '^0{32}$', '') AS trace