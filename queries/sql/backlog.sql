-- backlog (named query, run by the Go package for GET /v1/stats and
-- `statustrace stats`): per function, the events waiting for a worker now
-- (current state queued or waiting for a retry) and when the oldest of them
-- was accepted — the age SREs watch when async work piles up (AWS Lambda's
-- AsyncEventAge).
--
-- Parameters: tenant, namespaces, namespace, function, qualifier (as
-- status_counts; no time window: the backlog is "now").
--
-- Reads the tenant's rows of the events table in the retention window,
-- grouped by its key so it is right whether or not merges have run (an
-- event whose QUEUED transition has not arrived yet counts from its first
-- transition).
--
-- Columns: namespace, function, qualifier, waiting (UInt64),
--   oldest_start_ms (Int64 Unix ms).
SELECT
    namespace,
    function,
    qualifier,
    count() AS waiting,
    min(start_ms) AS oldest_start_ms
FROM
(
    SELECT
        namespace,
        function,
        qualifier,
        {{stateOfKey "max(state_key)"}} AS e_state,
        toUnixTimestamp64Milli(ifNull(min(start_time), min(first_time))) AS start_ms
    FROM {{.Events}}
    WHERE {{template "_scope.sql" .}}
      AND {{template "_keys.sql" .}}
      AND last_time >= {{cutoff}}
    GROUP BY tenant, namespace, function, qualifier, request_id
    HAVING {{isWaiting "e_state"}}
)
GROUP BY namespace, function, qualifier
ORDER BY namespace, function, qualifier
