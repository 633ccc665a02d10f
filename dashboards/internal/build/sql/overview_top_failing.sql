{{- /*
overview_top_failing: the functions with the most failed events in the range.
*/ -}}
SELECT namespace, function,
    sumIf(n, to_state IN ({{statesOf "failed"}})) AS failed,
    sumIf(n, {{isTerminal "to_state"}}) AS ended,
    failed / ended AS failure_rate,
    sumIf(n, to_state = {{state "retrying"}}) AS retries,
    arrayElement(topKWeightedIf(1)(error_code, n, to_state IN ({{statesOf "failed"}}) AND error_code != ''), 1) AS top_error_code
FROM ({{template "_stats_rows.sql" .}}
)
GROUP BY namespace, function
HAVING failed > 0
ORDER BY failed DESC, failure_rate DESC, namespace, function
LIMIT 10
