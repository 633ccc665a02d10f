-- Ends one waiting job as River ends a cancelled one, with the attempt error
-- that says EXPIRED. The state condition makes the claim atomic: a job a
-- worker has just taken, or another node has just expired, is left alone.
UPDATE river_job
SET state = 'cancelled',
    finalized_at = datetime('now', 'subsec'),
    errors = jsonb(json_insert(json(coalesce(errors, jsonb('[]'))), '$[#]', json(?)))
WHERE id = ? AND state IN ('available', 'scheduled', 'retryable', 'pending')
RETURNING attempt, json(metadata)
