-- event_durations: queue-wait and run-duration percentiles of a window.
--
--   SELECT * FROM event_durations(tenant = 't1', namespaces = [], namespace = '', function = 'resize',
--                                 qualifier = '', from_ms = $__from, to_ms = $__to)
--
-- Parameters: as transitions_window (a duration belongs to the window of the
-- transition that ends it).
--
-- Time spent in a state is the time between a transition and the event's
-- previous one (the schema keeps no duration column). Queue wait: QUEUED ->
-- RUNNING. Run duration: each attempt, RUNNING -> the next state. Retry
-- delay: RETRYING -> RUNNING (the step rules of schema.StepCode, which the
-- duration keys use too). A transition whose predecessor is missing
-- (outside the window or retention, not yet arrived) is left out.
--
-- Cost: unlike the status_* views this reads the tenant's raw transitions in
-- the window (the key is (tenant, request_id, seq)), so keep the window short
-- or the tenant small; the API runs it only on request (durations=true).
--
-- Columns: queue_waits, queue_wait_p50_ns, queue_wait_p90_ns,
--   queue_wait_p99_ns, runs, run_p50_ns, run_p90_ns, run_p99_ns,
--   retry_delays, retry_delay_p50_ns (UInt64 counts, Float64 nanoseconds).
SELECT
    queue_waits,
    q[1] AS queue_wait_p50_ns,
    q[2] AS queue_wait_p90_ns,
    q[3] AS queue_wait_p99_ns,
    runs,
    r[1] AS run_p50_ns,
    r[2] AS run_p90_ns,
    r[3] AS run_p99_ns,
    retry_delays,
    retry_delay_p50_ns
FROM
(
    SELECT
        countIf(kind = {{durationCode "queue_wait"}}) AS queue_waits,
        quantilesIf(0.5, 0.9, 0.99)(toFloat64(d), kind = {{durationCode "queue_wait"}}) AS q,
        countIf(kind = {{durationCode "run"}}) AS runs,
        quantilesIf(0.5, 0.9, 0.99)(toFloat64(d), kind = {{durationCode "run"}}) AS r,
        countIf(kind = {{durationCode "retry_delay"}}) AS retry_delays,
        quantileIf(0.5)(toFloat64(d), kind = {{durationCode "retry_delay"}}) AS retry_delay_p50_ns
    FROM
    (
        SELECT
            {{stepCode "from_state" "to_state"}} AS kind,
            toInt64(toUnixTimestamp64Nano(time)) - prev_ns AS d
        FROM
        (
            SELECT
                from_state,
                to_state,
                time,
                lagInFrame(to_state) OVER w AS prev_to_state,
                lagInFrame(toUnixTimestamp64Nano(time)) OVER w AS prev_ns
            FROM
            (
                {{template "_window_rows.sql" .}}
            )
            WINDOW w AS (PARTITION BY request_id ORDER BY seq ASC ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
        )
        WHERE from_state != '' AND prev_to_state = from_state
    )
    WHERE kind != 0 AND d >= 0
) AS counted
