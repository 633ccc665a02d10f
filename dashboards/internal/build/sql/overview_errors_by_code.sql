{{- /*
overview_errors_by_code: transitions that carried an error code, by code.
*/ -}}
SELECT error_code,
    sumIf(n, to_state IN ({{statesOf "failed"}})) AS failed,
    sumIf(n, to_state = {{state "retrying"}}) AS retried,
    sumIf(n, to_state NOT IN ({{statesOf "failed"}}) AND to_state != {{state "retrying"}}) AS other,
    uniqExact(namespace, function) AS functions
FROM ({{template "_stats_rows.sql" .}}
)
WHERE error_code != ''
GROUP BY error_code
ORDER BY failed + retried + other DESC, error_code
LIMIT 20
