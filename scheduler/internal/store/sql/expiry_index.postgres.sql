-- Waiting events by expiry, so the expiry sweep reads only what is due.
CREATE INDEX IF NOT EXISTS statustrace_river_job_expires ON river_job (((metadata -> 'statustrace' ->> 'expires_at')::bigint))
WHERE state IN ('available', 'scheduled', 'retryable', 'pending')
