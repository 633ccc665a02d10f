-- status_errors: transitions that carried an error, by state and error code,
-- most frequent first (retries and failures of a function, what they were).
--
--   SELECT * FROM status_errors(tenant = 't1', namespaces = [], namespace = '', function = 'resize',
--                               qualifier = '', from_ms = $__from, to_ms = $__to)
--
-- Parameters: as status_counts. Columns: state, error_code, transitions.
SELECT
    to_state AS state,
    error_code,
    sum(n) AS transitions
FROM
(
    {{template "_stats_rows.sql" .}}
)
WHERE error_code != ''
GROUP BY to_state, error_code
ORDER BY transitions DESC, state, error_code
