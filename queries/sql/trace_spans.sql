-- trace_spans (named query, run by the Go package for the console's Event
-- page): the spans of one trace in the otel_traces table the contrib
-- ClickHouse exporter writes (when the collector's full-trace pipeline is
-- on), in a time window around the event, oldest first.
--
-- Parameters: trace_id (String, lower-case hex as otel_traces.TraceId),
--   from_ns, to_ns (Int64 Unix ns: span start in [from, to)), limit (UInt32).
--
-- The caller has already found the event in its scope; the trace ID comes
-- from that event, never from the request. Spans older than the retention
-- window are not returned, as everywhere.
--
-- Columns: time_ns, span_id, parent_span_id, name, service, kind,
--   duration_ns, status_code, status_message.
SELECT
    toUnixTimestamp64Nano(Timestamp) AS time_ns,
    SpanId AS span_id,
    ParentSpanId AS parent_span_id,
    toString(SpanName) AS name,
    toString(ServiceName) AS service,
    toString(SpanKind) AS kind,
    toUInt64(Duration) AS duration_ns,
    toString(StatusCode) AS status_code,
    StatusMessage AS status_message
FROM {{.OtelTraces}}
WHERE TraceId = {trace_id:String}
  AND Timestamp >= {{cutoff}}
  AND Timestamp >= fromUnixTimestamp64Nano({from_ns:Int64}, 'UTC')
  AND Timestamp < fromUnixTimestamp64Nano({to_ns:Int64}, 'UTC')
ORDER BY Timestamp ASC, SpanId ASC
LIMIT {limit:UInt32}
