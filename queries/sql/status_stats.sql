-- status_stats (named query, run by the Go package for `statustrace stats`
-- and GET /v1/stats): the finalized per-minute rows of a window regrouped by
-- step, state and error code, from which the package derives counts per
-- status, the series, failure rate, retries and top errors in one read.
--
-- Parameters: as status_series. Columns: t (Int64 Unix seconds), state,
--   error_code, transitions.
SELECT
    toInt64(toUnixTimestamp(toStartOfInterval(bucket, toIntervalSecond({step_s:UInt32})))) AS t,
    to_state AS state,
    error_code,
    sum(n) AS transitions
FROM
(
    {{template "_stats_rows.sql" .}}
)
GROUP BY t, state, error_code
ORDER BY t, state, error_code
