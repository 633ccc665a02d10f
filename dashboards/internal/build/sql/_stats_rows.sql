{{- /*
_stats_rows: stats_minute in the time range, one exact count (n) per key.
*/}}
    SELECT bucket, namespace, function, to_state, error_code, uniqExactMerge(transitions) AS n
    FROM {{.Stats}}
    WHERE $__timeFilter(bucket) AND bucket >= {{cutoff}}
      AND {{template "_key_filters.sql" .}}
    GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code