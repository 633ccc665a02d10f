-- transitions_window: every transition of a window, deduplicated, grouped
-- by event and ordered by seq (what `statustrace export --kind transitions`
-- writes, for records kept beyond the retention window).
--
--   SELECT * FROM transitions_window(tenant = 't1', namespaces = [], namespace = '', function = '',
--                                    qualifier = '', from_ms = 1700000000000, to_ms = 1700086400000)
--
-- Parameters: tenant, namespaces; namespace, function, qualifier ('' = all);
--   from_ms, to_ms (Int64 Unix ms: transition time in [from, to)).
--
-- Reads the tenant's transitions in the window's daily partitions (the
-- primary key starts with tenant). One row per (event, seq); when two rows
-- claim one seq the one the status is computed from wins.
--
-- Columns: tenant, namespace, function, qualifier, request_id, seq, attempt,
--   from_state, to_state, time, time_ns, error_code, error_message,
--   invoke_type, node, trace_id and span_id (hex).
SELECT
    tenant,
    namespace,
    function,
    qualifier,
    request_id,
    seq,
    attempt,
    from_state,
    to_state,
    time,
    toUnixTimestamp64Nano(time) AS time_ns,
    error_code,
    error_message,
    invoke_type,
    node,
    lower(hex(trace_id)) AS trace_id,
    lower(hex(span_id)) AS span_id
FROM {{.Transitions}}
WHERE {{template "_scope.sql" .}}
  AND {{template "_keys.sql" .}}
  AND time >= {{cutoff}}
  AND time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
  AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
ORDER BY request_id ASC, seq ASC, {{stateRank "to_state"}} DESC
LIMIT 1 BY request_id, seq
