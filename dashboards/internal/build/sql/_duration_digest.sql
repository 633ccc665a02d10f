{{- /*
_duration_digest: p50, p90 and p99 (seconds) of one kind of duration per
interval, from the per-minute digests: the histograms merged per interval (a
transition delivered twice counts once), percentiles by nearest rank over the
bins, each within schema.DigestRelError. Reads one row per (function, minute,
kind), however many events. Data: {{template "_duration_digest.sql" (digest . "run")}}.
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
        SELECT {{template "_stats_interval.sql" .}} AS time, uniqExactMapMerge(digest) AS bins
        FROM {{.Durations}}
        WHERE $__timeFilter(bucket) AND bucket >= {{cutoff}}
          AND {{template "_key_filters.sql" .}}
          AND kind = {{durationKind .Kind}}
        GROUP BY time
    )
)
WHERE n > 0
ORDER BY time
