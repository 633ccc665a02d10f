{{- /*
event_attempts: one row per attempt: when it ran, how it ended, its error and node.
*/ -}}
SELECT attempt, started_at, ended_at, outcome, run_s,
    attempt_error AS error_code, attempt_message AS error_message, attempt_node AS node
FROM (
    SELECT attempt,
        minIf(time, to_state = {{state "running"}}) AS started_at,
        argMax(time, seq) AS ended_at,
        argMax(to_state, seq) AS outcome,
        if(outcome = {{state "running"}}, NULL, dateDiff('millisecond', started_at, ended_at) / 1000) AS run_s,
        argMaxIf(error_code, seq, error_code != '' OR error_message != '') AS attempt_error,
        argMaxIf(error_message, seq, error_code != '' OR error_message != '') AS attempt_message,
        argMinIf(node, seq, to_state = {{state "running"}}) AS attempt_node
    FROM {{template "_event_transitions.sql" .}}
    WHERE attempt > 0
    GROUP BY attempt
)
ORDER BY attempt
