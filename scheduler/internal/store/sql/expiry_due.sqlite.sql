-- Waiting events (queued or waiting for a retry) past their max age.
SELECT id, attempt FROM river_job
WHERE state IN ('available', 'scheduled', 'retryable', 'pending')
  AND json_extract(metadata, '$.statustrace.expires_at') <= ?
ORDER BY json_extract(metadata, '$.statustrace.expires_at')
LIMIT ?
