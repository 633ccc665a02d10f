-- Cluster mode only. The contrib clickhouse exporter creates its tables
-- ON CLUSTER as Replicated tables per shard (traces_table_name
-- otel_traces_local) but no Distributed table, and every collector writes
-- to whichever node it reached. These Distributed tables give readers
-- (Grafana's trace view, the event dashboard) every shard under the names
-- single-node mode uses. Run after the collector created the local tables
-- (deploy/kubernetes/clickhouse-init.yaml waits for them).
CREATE TABLE IF NOT EXISTS statustrace.otel_traces ON CLUSTER statustrace
AS statustrace.otel_traces_local
ENGINE = Distributed(statustrace, statustrace, otel_traces_local, cityHash64(TraceId));

CREATE TABLE IF NOT EXISTS statustrace.otel_traces_trace_id_ts ON CLUSTER statustrace
AS statustrace.otel_traces_local_trace_id_ts
ENGINE = Distributed(statustrace, statustrace, otel_traces_local_trace_id_ts, cityHash64(TraceId));
