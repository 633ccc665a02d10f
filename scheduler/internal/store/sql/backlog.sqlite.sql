-- Waiting events (queued or waiting for a retry) per function: how many, and
-- the age in seconds of the oldest (since it was accepted).
SELECT json_extract(metadata, '$.statustrace.namespace') AS namespace,
       json_extract(metadata, '$.statustrace.function') AS function,
       count(*) AS waiting,
       (julianday('now') - julianday(min(created_at))) * 86400.0 AS oldest_age
FROM river_job
WHERE state IN ('available', 'scheduled', 'retryable', 'pending')
  AND json_extract(metadata, '$.statustrace.request_id') IS NOT NULL
GROUP BY 1, 2
