{{- /*
_stats_rows: the statistics rows of a window, per minute, each finalized
(the hashes of the transitions, merged per stored key with maxMap, so
duplicates count once and per-row counts can then be summed). Exact for any window, aligned to minutes or not:
  - the whole minutes inside [from, to) come from the pre-aggregated stats
    table, so rows read are proportional to functions x minutes x states x
    error codes, not to events;
  - the partial minutes at either edge ([from, from rounded up to the
    minute) and [to rounded down, to)) are counted from the raw transitions
    with the same dedup the stats view applies (distinct
    cityHash64(request_id, seq)), grouped into their minute. For an edge that
    is aligned the condition folds to a constant false before anything is
    read, so a window of whole minutes reads the stats table only.
Parameters: _scope, _keys, from_ms and to_ms (Int64 Unix ms: transitions at
or after from and before to). Columns: namespace, function, bucket, to_state,
error_code, n.
*/ -}}
SELECT
        namespace,
        function,
        bucket,
        to_state,
        error_code,
        length(maxMap(transitions).1) AS n
    FROM {{.Stats}}
    WHERE {{template "_scope.sql" .}}
      AND {{template "_keys.sql" .}}
      AND bucket >= {{cutoff}}
      AND bucket >= toStartOfMinute(fromUnixTimestamp64Milli({from_ms:Int64} + 59999, 'UTC'))
      AND bucket < toStartOfMinute(fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC'))
    GROUP BY namespace, function, qualifier, bucket, to_state, error_code
    UNION ALL
    SELECT
        namespace,
        function,
        toStartOfMinute(toDateTime(time, 'UTC')) AS bucket,
        to_state,
        error_code,
        uniqExact(cityHash64(request_id, seq)) AS n
    FROM {{.Transitions}}
    WHERE {{template "_scope.sql" .}}
      AND {{template "_keys.sql" .}}
      AND time >= {{cutoff}}
      AND (({from_ms:Int64} % 60000 != 0
            AND time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
            AND time < least(fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC'), toStartOfMinute(fromUnixTimestamp64Milli({from_ms:Int64} + 59999, 'UTC'))))
        OR ({to_ms:Int64} % 60000 != 0
            AND time >= greatest(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'), toStartOfMinute(fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')))
            AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')))
    GROUP BY namespace, function, qualifier, bucket, to_state, error_code
