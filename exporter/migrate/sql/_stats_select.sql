WITH multiIf(from_state = {{state "queued"}} AND to_state = {{state "running"}}, {{durationCode "queue_wait"}},
             from_state = {{state "running"}}, {{durationCode "run"}},
             from_state = {{state "retrying"}} AND to_state = {{state "running"}}, {{durationCode "retry_delay"}}, 0) AS step_kind
SELECT
    tenant, namespace, function, qualifier,
    toStartOfMinute(toDateTime(time, 'UTC')) AS bucket,
    to_state, error_code,
    maxMap([cityHash64(request_id, seq)], [{{durationKey "step_kind" "from_state_ns" (isTerminal "to_state") "event_ns"}}]) AS transitions
FROM {{table "transitions"}}
