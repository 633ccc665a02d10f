-- event_list: the events of one tenant that match the filters, unordered.
--
--   SELECT request_id, status, start_time, end_time
--   FROM event_list(tenant = 't1', namespaces = [], namespace = 'default', function = 'resize',
--                   qualifier = '', request_id = '', invoke_types = [], statuses = [{{public "failed"}}],
--                   start_from_ms = 0, start_to_ms = 0, end_from_ms = 0, end_to_ms = 0)
--   ORDER BY start_time DESC, request_id DESC LIMIT 20
--
-- Parameters (every one must be given; '' / [] / 0 mean "no filter"):
--   tenant, namespaces         as in event_status
--   namespace, function, qualifier, request_id   String: exact match
--   invoke_types  Array(String)  any of these invocation types
--   statuses      Array(String)  any of these public statuses (RUNNING = every
--                                non-terminal state, FAILED includes EXPIRED)
--                                or detailed states (QUEUED, RETRYING, ...)
--   start_from_ms, start_to_ms   Int64 Unix ms: start_time in [from, to)
--   end_from_ms, end_to_ms       Int64 Unix ms: end_time in [from, to); a
--                                running event has no end_time and matches
--                                no end-time range
--
-- Reads the events table (one row per event, maintained by a materialized
-- view), grouped by its key so it is right whether or not merges have run.
-- An event is visible while its last transition is inside the retention
-- window. Columns as event_status, without transitions and errors.
SELECT
    tenant,
    namespace,
    function,
    qualifier,
    request_id,
    {{publicStatus "e_state"}} AS status,
    e_state AS state,
    e_invoke_type AS invoke_type,
    e_attempts AS attempts,
    e_last_seq AS last_seq,
    ifNull(e_queued, e_first) AS start_time,
    e_end AS end_time,
    e_last AS last_time,
    e_error_code AS error_code,
    e_error_message AS error_message,
    e_node AS node,
    lower(hex(e_trace)) AS trace_id,
    toUnixTimestamp64Nano(ifNull(e_queued, e_first)) AS start_ns,
    ifNull(toUnixTimestamp64Nano(e_end), 0) AS end_ns,
    toUnixTimestamp64Nano(e_last) AS last_ns
FROM
(
    SELECT
        tenant,
        namespace,
        function,
        qualifier,
        request_id,
        {{template "_event_current.sql" .}}
    FROM {{.Events}}
    WHERE {{template "_scope.sql" .}}
      AND {{template "_keys.sql" .}}
      AND ({request_id:String} = '' OR request_id = {request_id:String})
      AND last_time >= {{cutoff}}
{{- if .Since}}
      AND request_id IN (SELECT request_id FROM {{.Events}} WHERE {{template "_scope.sql" .}} AND last_time > fromUnixTimestamp64Nano({since_ns:Int64}, 'UTC'))
{{- end}}
    GROUP BY tenant, namespace, function, qualifier, request_id
)
WHERE (empty({invoke_types:Array(String)}) OR has({invoke_types:Array(String)}, e_invoke_type))
  AND (empty({statuses:Array(String)}) OR has({statuses:Array(String)}, {{publicStatus "e_state"}}) OR has({statuses:Array(String)}, e_state))
  AND ({start_from_ms:Int64} = 0 OR start_ns >= {start_from_ms:Int64} * 1000000)
  AND ({start_to_ms:Int64} = 0 OR start_ns < {start_to_ms:Int64} * 1000000)
  AND ({end_from_ms:Int64} = 0 OR (end_ns != 0 AND end_ns >= {end_from_ms:Int64} * 1000000))
  AND ({end_to_ms:Int64} = 0 OR (end_ns != 0 AND end_ns < {end_to_ms:Int64} * 1000000))
