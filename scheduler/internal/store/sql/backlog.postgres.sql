-- Waiting events (queued or waiting for a retry) per function: how many, and
-- the age in seconds of the oldest (since it was accepted).
SELECT metadata -> 'statustrace' ->> 'namespace' AS namespace,
       metadata -> 'statustrace' ->> 'function' AS function,
       count(*) AS waiting,
       extract(epoch FROM (now() - min(created_at)))::double precision AS oldest_age
FROM river_job
WHERE state IN ('available', 'scheduled', 'retryable', 'pending')
  AND metadata -> 'statustrace' ->> 'request_id' IS NOT NULL
GROUP BY 1, 2
