-- duration_digests (named query, run by the Go package for `statustrace
-- stats --durations` and GET /v1/stats?durations=true): the per-minute
-- duration histograms of a window merged per kind (queue_wait, run,
-- retry_delay, end_to_end). Each bin is a set of (request_id, seq) hashes,
-- so a re-delivered transition counts once; the Go package turns the bins
-- into percentiles (schema.DigestValue: within schema.DigestRelError).
--
-- Parameters: as status_counts (a duration belongs to the minute of the
-- transition that ends it). Columns: kind, bins (Map(UInt16, UInt64): bin ->
-- durations in it).
--
-- Reads only the digest table: one row per (function, minute, kind), however
-- many events there were.
SELECT
    kind,
    uniqExactMapMerge(digest) AS bins
FROM {{.Durations}}
WHERE {{template "_scope.sql" .}}
  AND {{template "_keys.sql" .}}
  AND bucket >= {{cutoff}}
  AND bucket >= toStartOfMinute(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
  AND bucket < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
GROUP BY kind
ORDER BY kind
