{{- /*
overview_run_duration: terminal state minus first RUNNING (retries
included), per event that ended in the range.
*/ -}}
SELECT $__timeInterval(ended_at) AS time,
    {{template "_quantiles.sql" "run_s"}}
FROM (
    SELECT minIf(time, to_state = {{state "running"}}) AS started_at,
        maxIf(time, {{isTerminal "to_state"}}) AS ended_at,
        dateDiff('millisecond', started_at, ended_at) / 1000 AS run_s
    FROM {{.Transitions}}
    WHERE $__timeFilter(time) AND time >= {{cutoff}}
      AND {{template "_key_filters.sql" .}}
    GROUP BY tenant, request_id
    HAVING countIf(to_state = {{state "running"}}) > 0 AND countIf({{isTerminal "to_state"}}) > 0
)
GROUP BY time
ORDER BY time
