{{- /*
_stats_rows: the per-minute stats in the time range, one exact count (n) per
key (the number of distinct transition hashes).
*/}}
    SELECT bucket, namespace, function, to_state, error_code, length(maxMap(transitions).1) AS n
    FROM {{.Stats}}
    WHERE $__timeFilter(bucket) AND bucket >= {{cutoff}}
      AND {{template "_key_filters.sql" .}}
    GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code