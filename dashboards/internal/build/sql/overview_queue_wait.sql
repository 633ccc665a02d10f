{{- /*
overview_queue_wait: first RUNNING minus QUEUED, per event queued in the range.
*/ -}}
SELECT $__timeInterval(queued_at) AS time,
    {{template "_quantiles.sql" "wait_s"}}
FROM (
    SELECT minIf(time, to_state = {{state "queued"}}) AS queued_at,
        minIf(time, to_state = {{state "running"}}) AS started_at,
        dateDiff('millisecond', queued_at, started_at) / 1000 AS wait_s
    FROM {{.Transitions}}
    WHERE $__timeFilter(time) AND time >= {{cutoff}}
      AND {{template "_key_filters.sql" .}}
    GROUP BY tenant, request_id
    HAVING countIf(to_state = {{state "queued"}}) > 0 AND countIf(to_state = {{state "running"}}) > 0
)
GROUP BY time
ORDER BY time
