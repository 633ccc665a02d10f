-- status_series: status_counts per time step (a Grafana time series).
--
--   SELECT t, state, transitions
--   FROM status_series(tenant = 't1', namespaces = [], namespace = '', function = 'resize', qualifier = '',
--                      from_ms = $__from, to_ms = $__to, step_s = 60)
--
-- Parameters: as status_counts, plus step_s (UInt32 seconds, a multiple of
-- 60: 60 = per minute, 3600 = per hour).
--
-- Columns: t (DateTime, start of the step), state, status, transitions.
-- Steps with no transitions have no row.
SELECT
    toStartOfInterval(bucket, toIntervalSecond({step_s:UInt32})) AS t,
    to_state AS state,
    {{publicStatus "to_state"}} AS status,
    sum(n) AS transitions
FROM
(
    {{template "_stats_rows.sql" .}}
)
GROUP BY t, to_state
ORDER BY t, to_state
