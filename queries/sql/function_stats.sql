-- function_stats (named query, run by the Go package for GET /v1/functions
-- and the console's Functions page): the finalized per-minute rows of a
-- window regrouped by function, step and state, from which the package
-- derives each function's counts per status, failure rate, retries and a
-- small series. Reads only the pre-aggregated stats table.
--
-- Parameters: as status_series. Columns: namespace, function, t (Int64 Unix
--   seconds), state, transitions.
SELECT
    namespace,
    function,
    toInt64(toUnixTimestamp(toStartOfInterval(bucket, toIntervalSecond({step_s:UInt32})))) AS t,
    to_state AS state,
    sum(n) AS transitions
FROM
(
    {{template "_stats_rows.sql" .}}
)
GROUP BY namespace, function, t, state
ORDER BY namespace, function, t, state
