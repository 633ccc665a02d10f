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
-- Reads only the per-minute stats table: each row's (hash, duration key)
-- pairs are merged per stored key (maxMap: a re-delivered transition is one
-- pair), the keys counted, and every duration key split into the kinds and
-- bins it carries (schema.DurationPartsExpr). Rows read are functions x
-- minutes x states x error codes, however many events there were.
SELECT
    part.1 AS kind,
    sumMap(map(part.2, n)) AS bins
FROM
(
    SELECT k, count() AS n
    FROM
    (
        SELECT maxMap(transitions).2 AS keys
        FROM {{.Stats}}
        WHERE {{template "_scope.sql" .}}
          AND {{template "_keys.sql" .}}
          AND bucket >= {{cutoff}}
          AND bucket >= toStartOfMinute(fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC'))
          AND bucket < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
        GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code
    )
    ARRAY JOIN keys AS k
    GROUP BY k
)
ARRAY JOIN {{durationParts "k"}} AS part
GROUP BY kind
ORDER BY kind
