{{- /*
overview_backlog: per function, the events waiting for a worker now (queued
or waiting for a retry: event.WaitingStates) and the age of the oldest since
its acceptance, AWS Lambda's AsyncEventAge. Not limited to the time range:
the backlog is the present.
*/ -}}
SELECT namespace, function, count() AS waiting,
    dateDiff('millisecond', min(accepted_at), now64(3)) / 1000 AS oldest_age_s
FROM (
    SELECT namespace, function, {{stateOfKey "max(state_key)"}} AS current_state,
        ifNull(min(start_time), min(first_time)) AS accepted_at
    FROM {{.Events}}
    WHERE {{template "_key_filters.sql" .}}
    GROUP BY tenant, namespace, function, qualifier, request_id
    HAVING max(last_time) >= {{cutoff}} AND {{isWaiting "current_state"}}
)
GROUP BY namespace, function
ORDER BY oldest_age_s DESC, namespace, function
LIMIT 20
