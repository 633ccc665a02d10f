-- Waiting events (queued or waiting for a retry) past their max age.
SELECT id, attempt FROM river_job
WHERE state IN ('available', 'scheduled', 'retryable', 'pending')
  AND ((metadata -> 'statustrace' ->> 'expires_at')::bigint) <= ?
ORDER BY ((metadata -> 'statustrace' ->> 'expires_at')::bigint)
LIMIT ?
