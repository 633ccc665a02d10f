{{- /*
_duration_digest: p50, p90 and p99 (seconds) of one kind of duration per
interval, from the per-minute digests: the histograms merged per interval (a
transition delivered twice counts once), percentiles by nearest rank over the
bins, each within schema.DigestRelError. Reads one row per (function, minute,
state, error code), however many events: each row's (hash, duration key)
pairs merged per stored key, the keys counted and split into the kinds and
bins they carry. Data: {{template "_duration_digest.sql" (digest . "run")}}.
*/ -}}
SELECT time,
    {{digestValue "bins_sorted[arrayFirstIndex(c -> c >= ceil(0.5 * n), cum)]"}} / 1e9 AS p50,
    {{digestValue "bins_sorted[arrayFirstIndex(c -> c >= ceil(0.9 * n), cum)]"}} / 1e9 AS p90,
    {{digestValue "bins_sorted[arrayFirstIndex(c -> c >= ceil(0.99 * n), cum)]"}} / 1e9 AS p99
FROM (
    SELECT time, arraySort(mapKeys(bins)) AS bins_sorted,
        arrayCumSum(arrayMap(b -> bins[b], bins_sorted)) AS cum,
        cum[-1] AS n
    FROM (
        SELECT time, sumMap(map(part.2, n)) AS bins
        FROM (
            SELECT time, k, count() AS n
            FROM (
                SELECT {{template "_stats_interval.sql" .}} AS time, maxMap(transitions).2 AS keys
                FROM {{.Stats}}
                WHERE $__timeFilter(bucket) AND bucket >= {{cutoff}}
                  AND {{template "_key_filters.sql" .}}
                GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code
            )
            ARRAY JOIN keys AS k
            GROUP BY time, k
        )
        ARRAY JOIN {{durationParts "k"}} AS part
        WHERE part.1 = {{durationKind .Kind}}
        GROUP BY time
    )
)
WHERE n > 0
ORDER BY time
