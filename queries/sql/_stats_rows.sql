{{- /*
_stats_rows: the per-minute statistics rows of a window, each finalized
(uniqExactMerge per stored key, so duplicates count once and per-row counts
can then be summed). Reads only the pre-aggregated stats table: rows are
proportional to functions x minutes x states x error codes, not to events.
Parameters: _scope, _keys, from_ms and to_ms (Int64 Unix ms: buckets that
start in [from rounded down to the minute, to)). Columns: namespace,
function, bucket, to_state, error_code, n.
*/ -}}
SELECT
        namespace,
        function,
        bucket,
        to_state,
        error_code,
        uniqExactMerge(transitions) AS n
    FROM {{.Stats}}
    WHERE {{template "_scope.sql" .}}
      AND {{template "_keys.sql" .}}
      AND bucket >= {{cutoff}}
      AND bucket >= toStartOfMinute(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
      AND bucket < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
    GROUP BY namespace, function, qualifier, bucket, to_state, error_code
