-- status_counts: how many transitions into each detailed state happened in
-- a window, for a tenant, a namespace, a function or one qualifier.
--
--   SELECT * FROM status_counts(tenant = 't1', namespaces = [], namespace = '', function = 'resize',
--                               qualifier = '', from_ms = 1700000000000, to_ms = 1700259200000)
--
-- Parameters: tenant, namespaces; namespace, function, qualifier ('' = all);
--   from_ms, to_ms (Int64 Unix ms: transitions at or after from, before to;
--   exact for any window, see _stats_rows).
--
-- Every event enters QUEUED once (accepted events), RUNNING once per attempt,
-- RETRYING once per retry and one terminal state once, so these are also event
-- counts: FINISHED / FAILED / EXPIRED / ABORTED = events that ended in the
-- window. Exact under duplicate delivery. A window of whole minutes reads
-- only the per-minute stats; the partial minutes at an unaligned edge are
-- counted from the raw transitions.
--
-- Columns: state, status (public status of the state), transitions.
SELECT
    to_state AS state,
    {{publicStatus "to_state"}} AS status,
    sum(n) AS transitions
FROM
(
    {{template "_stats_rows.sql" .}}
)
GROUP BY to_state
ORDER BY to_state
