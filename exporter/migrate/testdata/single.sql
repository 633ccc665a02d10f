-- bootstrap
CREATE DATABASE IF NOT EXISTS `statustrace`;

CREATE TABLE IF NOT EXISTS `statustrace`.`schema_migrations`
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version;

-- migration transitions, events and per-minute stats with their materialized views
CREATE TABLE IF NOT EXISTS `statustrace`.`transitions`
(
    tenant        LowCardinality(String) CODEC(ZSTD(1)),
    namespace     LowCardinality(String) CODEC(ZSTD(1)),
    function      LowCardinality(String) CODEC(ZSTD(1)),
    qualifier     LowCardinality(String) CODEC(ZSTD(1)),
    request_id    String CODEC(ZSTD(6)),
    seq           UInt64 CODEC(T64, ZSTD(1)),
    attempt       UInt32 CODEC(T64, ZSTD(1)),
    from_state    LowCardinality(String) CODEC(ZSTD(1)),
    to_state      LowCardinality(String) CODEC(ZSTD(1)),
    time          DateTime64(9, 'UTC') CODEC(T64, ZSTD(1)),
    error_code    LowCardinality(String) CODEC(ZSTD(1)),
    error_message String CODEC(ZSTD(3)),
    invoke_type   LowCardinality(String) CODEC(ZSTD(1)),
    node          LowCardinality(String) CODEC(ZSTD(1)),
    trace_id      FixedString(16) CODEC(ZSTD(1)),
    -- The plugin derives a transition's span ID from (request_id, seq)
    -- (plugin/spans.TransitionSpanID), so it is not stored: span_id computes
    -- it, and span_id_override holds only IDs that differ (spans from another
    -- producer). Zero bytes cost nothing, and 8 random bytes a row were a
    -- fifth of the table.
    span_id_override FixedString(8) CODEC(ZSTD(1)),
    span_id       FixedString(8) ALIAS if(span_id_override != unhex('0000000000000000'), span_id_override,
        toFixedString(substring(SHA256(concat('statustrace/transition\0', request_id, '\0', reverse(reinterpretAsFixedString(seq)))), 1, 8), 8))
)
ENGINE = ReplacingMergeTree()
PARTITION BY toDate(time)
ORDER BY (tenant, request_id, seq)
TTL toDateTime(time) + toIntervalSecond(259200)
SETTINGS ttl_only_drop_parts = 1, index_granularity = 8192;

CREATE TABLE IF NOT EXISTS `statustrace`.`events`
(
    tenant             LowCardinality(String),
    namespace          LowCardinality(String),
    function           LowCardinality(String),
    qualifier          LowCardinality(String),
    request_id         String CODEC(ZSTD(1)),
    state              AggregateFunction(argMax, String, Tuple(UInt64, UInt8)) CODEC(ZSTD(3)),
    last_seq           SimpleAggregateFunction(max, UInt64) CODEC(T64, ZSTD(1)),
    attempts           SimpleAggregateFunction(max, UInt32) CODEC(T64, ZSTD(1)),
    first_time         SimpleAggregateFunction(min, DateTime64(9, 'UTC')) CODEC(T64, ZSTD(1)),
    last_time          SimpleAggregateFunction(max, DateTime64(9, 'UTC')) CODEC(T64, ZSTD(1)),
    start_time         SimpleAggregateFunction(min, Nullable(DateTime64(9, 'UTC'))) CODEC(T64, ZSTD(1)),
    end_time           SimpleAggregateFunction(max, Nullable(DateTime64(9, 'UTC'))) CODEC(T64, ZSTD(1)),
    last_error_code    AggregateFunction(argMax, String, Tuple(UInt8, UInt64)) CODEC(ZSTD(3)),
    last_error_message AggregateFunction(argMax, String, Tuple(UInt8, UInt64)) CODEC(ZSTD(3)),
    last_node          AggregateFunction(argMax, String, UInt64) CODEC(ZSTD(3)),
    invoke_type        SimpleAggregateFunction(any, LowCardinality(String)),
    trace_id           SimpleAggregateFunction(max, FixedString(16)) CODEC(ZSTD(1)),
    INDEX idx_request_id request_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = AggregatingMergeTree()
PARTITION BY toDate(last_time)
ORDER BY (tenant, namespace, function, qualifier, request_id)
TTL toDateTime(last_time) + toIntervalSecond(259200)
SETTINGS ttl_only_drop_parts = 1, index_granularity = 8192;

CREATE TABLE IF NOT EXISTS `statustrace`.`stats_minute`
(
    tenant      LowCardinality(String),
    namespace   LowCardinality(String),
    function    LowCardinality(String),
    qualifier   LowCardinality(String),
    bucket      DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    to_state    LowCardinality(String),
    error_code  LowCardinality(String),
    transitions AggregateFunction(uniqExact, UInt64)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toDate(bucket)
ORDER BY (tenant, namespace, function, qualifier, bucket, to_state, error_code)
TTL bucket + toIntervalSecond(259200)
SETTINGS ttl_only_drop_parts = 1, index_granularity = 8192;

CREATE TABLE IF NOT EXISTS `statustrace`.`settings`
(
    name       LowCardinality(String),
    value      String,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name;

CREATE MATERIALIZED VIEW IF NOT EXISTS `statustrace`.`events_mv` TO `statustrace`.`events` AS
SELECT
    tenant, namespace, function, qualifier, request_id,
    argMaxState(CAST(to_state, 'String'), (seq, toUInt8(indexOf(['QUEUED','RUNNING','RETRYING','TERMINATING','FINISHED','FAILED','ABORTED','EXPIRED'], to_state)))) AS state,
    max(seq) AS last_seq,
    max(attempt) AS attempts,
    min(time) AS first_time,
    max(time) AS last_time,
    minOrNullIf(time, to_state = 'QUEUED') AS start_time,
    maxOrNullIf(time, to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED')) AS end_time,
    argMaxState(CAST(error_code, 'String'), (toUInt8(error_code != '' OR error_message != ''), seq)) AS last_error_code,
    argMaxState(error_message, (toUInt8(error_code != '' OR error_message != ''), seq)) AS last_error_message,
    argMaxState(CAST(node, 'String'), seq) AS last_node,
    any(invoke_type) AS invoke_type,
    max(trace_id) AS trace_id
FROM `statustrace`.`transitions`
GROUP BY tenant, namespace, function, qualifier, request_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS `statustrace`.`stats_minute_mv` TO `statustrace`.`stats_minute` AS
SELECT
    tenant, namespace, function, qualifier,
    toStartOfMinute(toDateTime(time, 'UTC')) AS bucket,
    to_state, error_code,
    uniqExactState(cityHash64(request_id, seq)) AS transitions
FROM `statustrace`.`transitions`
GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code;

-- migration events: times at millisecond precision, stored with the GCD codec
ALTER TABLE `statustrace`.`events`
    MODIFY COLUMN first_time SimpleAggregateFunction(min, DateTime64(9, 'UTC')) CODEC(GCD, T64, ZSTD(1)),
    MODIFY COLUMN last_time  SimpleAggregateFunction(max, DateTime64(9, 'UTC')) CODEC(GCD, T64, ZSTD(1)),
    MODIFY COLUMN start_time SimpleAggregateFunction(min, Nullable(DateTime64(9, 'UTC'))) CODEC(GCD, T64, ZSTD(1)),
    MODIFY COLUMN end_time   SimpleAggregateFunction(max, Nullable(DateTime64(9, 'UTC'))) CODEC(GCD, T64, ZSTD(1));

ALTER TABLE `statustrace`.`events_mv` MODIFY QUERY
SELECT
    tenant, namespace, function, qualifier, request_id,
    argMaxState(CAST(to_state, 'String'), (seq, toUInt8(indexOf(['QUEUED','RUNNING','RETRYING','TERMINATING','FINISHED','FAILED','ABORTED','EXPIRED'], to_state)))) AS state,
    max(seq) AS last_seq,
    max(attempt) AS attempts,
    toDateTime64(toStartOfMillisecond(min(time)), 9, 'UTC') AS first_time,
    toDateTime64(toStartOfMillisecond(max(time)), 9, 'UTC') AS last_time,
    toDateTime64(toStartOfMillisecond(minOrNullIf(time, to_state = 'QUEUED')), 9, 'UTC') AS start_time,
    toDateTime64(toStartOfMillisecond(maxOrNullIf(time, to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED'))), 9, 'UTC') AS end_time,
    argMaxState(CAST(error_code, 'String'), (toUInt8(error_code != '' OR error_message != ''), seq)) AS last_error_code,
    argMaxState(error_message, (toUInt8(error_code != '' OR error_message != ''), seq)) AS last_error_message,
    argMaxState(CAST(node, 'String'), seq) AS last_node,
    any(invoke_type) AS invoke_type,
    max(trace_id) AS trace_id
FROM `statustrace`.`transitions`
GROUP BY tenant, namespace, function, qualifier, request_id;

-- migration transitions: same (tenant, request_id, seq) keeps the higher-ranked state on merge (version column state_rank)
ALTER TABLE `statustrace`.`transitions`
    ADD COLUMN IF NOT EXISTS state_rank UInt8 MATERIALIZED toUInt8(indexOf(['QUEUED','RUNNING','RETRYING','TERMINATING','FINISHED','FAILED','ABORTED','EXPIRED'], to_state)) CODEC(ZSTD(1));

-- skipped when not 0: SELECT count() AS n FROM system.tables WHERE database = 'statustrace' AND name = 'transitions' AND engine_full LIKE '%MergeTree(%state_rank)%'
CREATE TABLE IF NOT EXISTS `statustrace`.`transitions_v3_new`
(
    tenant        LowCardinality(String) CODEC(ZSTD(1)),
    namespace     LowCardinality(String) CODEC(ZSTD(1)),
    function      LowCardinality(String) CODEC(ZSTD(1)),
    qualifier     LowCardinality(String) CODEC(ZSTD(1)),
    request_id    String CODEC(ZSTD(6)),
    seq           UInt64 CODEC(T64, ZSTD(1)),
    attempt       UInt32 CODEC(T64, ZSTD(1)),
    from_state    LowCardinality(String) CODEC(ZSTD(1)),
    to_state      LowCardinality(String) CODEC(ZSTD(1)),
    time          DateTime64(9, 'UTC') CODEC(T64, ZSTD(1)),
    error_code    LowCardinality(String) CODEC(ZSTD(1)),
    error_message String CODEC(ZSTD(3)),
    invoke_type   LowCardinality(String) CODEC(ZSTD(1)),
    node          LowCardinality(String) CODEC(ZSTD(1)),
    trace_id      FixedString(16) CODEC(ZSTD(1)),
    -- The plugin derives a transition's span ID from (request_id, seq)
    -- (plugin/spans.TransitionSpanID), so it is not stored: span_id computes
    -- it, and span_id_override holds only IDs that differ (spans from another
    -- producer). Zero bytes cost nothing, and 8 random bytes a row were a
    -- fifth of the table.
    span_id_override FixedString(8) CODEC(ZSTD(1)),
    span_id       FixedString(8) ALIAS if(span_id_override != unhex('0000000000000000'), span_id_override,
        toFixedString(substring(SHA256(concat('statustrace/transition\0', request_id, '\0', reverse(reinterpretAsFixedString(seq)))), 1, 8), 8)),
    -- The version: the state rank the events view breaks same-seq ties
    -- with (terminal over non-terminal, then later over earlier).
    state_rank    UInt8 MATERIALIZED toUInt8(indexOf(['QUEUED','RUNNING','RETRYING','TERMINATING','FINISHED','FAILED','ABORTED','EXPIRED'], to_state)) CODEC(ZSTD(1))
)
ENGINE = ReplacingMergeTree(state_rank)
PARTITION BY toDate(time)
ORDER BY (tenant, request_id, seq)
TTL toDateTime(time) + toIntervalSecond(259200)
SETTINGS ttl_only_drop_parts = 1, index_granularity = 8192;

-- skipped when not 0: SELECT count() AS n FROM system.tables WHERE database = 'statustrace' AND name = 'transitions' AND engine_full LIKE '%MergeTree(%state_rank)%'
EXCHANGE TABLES `statustrace`.`transitions` AND `statustrace`.`transitions_v3_new`;

-- skipped when not 0: SELECT toUInt64(count() = 0) AS n FROM system.tables WHERE database = 'statustrace' AND name = 'transitions_v2_old'
-- once per row of: SELECT DISTINCT partition_id FROM system.parts WHERE database = 'statustrace' AND table = 'transitions_v2_old' AND active ORDER BY partition_id
ALTER TABLE `statustrace`.`transitions_v2_old` MOVE PARTITION ID {partition_id} TO TABLE `statustrace`.`transitions`;

-- skipped when not 0: SELECT count() AS n FROM system.parts WHERE database = 'statustrace' AND table = 'transitions_v2_old' AND active AND rows > 0
DROP TABLE IF EXISTS `statustrace`.`transitions_v2_old`;

-- skipped when not 0: SELECT toUInt64(count() = 0) AS n FROM system.tables WHERE database = 'statustrace' AND name = 'transitions_v3_new'
RENAME TABLE `statustrace`.`transitions_v3_new` TO `statustrace`.`transitions_v2_old`;

-- skipped when not 0: SELECT toUInt64(count() = 0) AS n FROM system.tables WHERE database = 'statustrace' AND name = 'transitions_v2_old'
-- once per row of: SELECT DISTINCT partition_id FROM system.parts WHERE database = 'statustrace' AND table = 'transitions_v2_old' AND active ORDER BY partition_id
ALTER TABLE `statustrace`.`transitions_v2_old` MOVE PARTITION ID {partition_id} TO TABLE `statustrace`.`transitions`;

-- skipped when not 0: SELECT count() AS n FROM system.parts WHERE database = 'statustrace' AND table = 'transitions_v2_old' AND active AND rows > 0
DROP TABLE IF EXISTS `statustrace`.`transitions_v2_old`;

SELECT throwIf(
    (SELECT count() FROM system.tables WHERE database = 'statustrace' AND name = 'transitions' AND engine_full LIKE '%MergeTree(%state_rank)%') != 1
    OR (SELECT count() FROM system.tables WHERE database = 'statustrace' AND name IN ('transitions_v3_new', 'transitions_v2_old')) != 0,
    'the rebuild of transitions is not complete yet (rows still moving, or another migrator is at work): Up will retry');

-- migration duration digests: transitions carry the time in from_state and the event's age, durations_minute holds per-minute deduplicated histograms
ALTER TABLE `statustrace`.`transitions`
    ADD COLUMN IF NOT EXISTS from_state_ns UInt64 DEFAULT 0 CODEC(T64, ZSTD(1)),
    ADD COLUMN IF NOT EXISTS event_ns UInt64 DEFAULT 0 CODEC(T64, ZSTD(1));

CREATE TABLE IF NOT EXISTS `statustrace`.`durations_minute`
(
    tenant    LowCardinality(String),
    namespace LowCardinality(String),
    function  LowCardinality(String),
    qualifier LowCardinality(String),
    bucket    DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    kind      LowCardinality(String),
    digest    AggregateFunction(uniqExactMap, Map(UInt16, UInt64))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toDate(bucket)
ORDER BY (tenant, namespace, function, qualifier, bucket, kind)
TTL bucket + toIntervalSecond(259200)
SETTINGS ttl_only_drop_parts = 1, index_granularity = 8192;

CREATE MATERIALIZED VIEW IF NOT EXISTS `statustrace`.`durations_minute_mv` TO `statustrace`.`durations_minute` AS
SELECT
    tenant, namespace, function, qualifier,
    toStartOfMinute(toDateTime(time, 'UTC')) AS bucket,
    k.1 AS kind,
    uniqExactMapState(map(toUInt16(least(floor(log(toFloat64(k.2)) / log(1.02)), 65535)), cityHash64(request_id, seq))) AS digest
FROM `statustrace`.`transitions`
ARRAY JOIN [
    (multiIf(from_state = 'QUEUED' AND to_state = 'RUNNING', 'queue_wait',
             from_state = 'RUNNING', 'run',
             from_state = 'RETRYING' AND to_state = 'RUNNING', 'retry_delay', ''), from_state_ns),
    (if(to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED'), 'end_to_end', ''), event_ns)
] AS k
WHERE k.1 != '' AND k.2 > 0
GROUP BY tenant, namespace, function, qualifier, bucket, kind;

-- migration transitions: span_id applies the all-zero rule of the plugin's span IDs (event.TransitionSpanID)
ALTER TABLE `statustrace`.`transitions`
    MODIFY COLUMN span_id FixedString(8) ALIAS if(span_id_override != unhex('0000000000000000'), span_id_override,
        if(toFixedString(substring(SHA256(concat('statustrace/transition\0', request_id, '\0', reverse(reinterpretAsFixedString(seq)))), 1, 8), 8) = unhex('0000000000000000'), toFixedString(unhex('0000000000000001'), 8), toFixedString(substring(SHA256(concat('statustrace/transition\0', request_id, '\0', reverse(reinterpretAsFixedString(seq)))), 1, 8), 8)));

-- migration events: the current state, last error and node as plain maxima, one row per transition (no aggregate states on insert)
ALTER TABLE `statustrace`.`events`
    ADD COLUMN IF NOT EXISTS state_key SimpleAggregateFunction(max, UInt64)
        DEFAULT toUInt64(last_seq) * 256 + toUInt8(indexOf(['QUEUED','RUNNING','RETRYING','TERMINATING','FINISHED','FAILED','ABORTED','EXPIRED'], finalizeAggregation(state))) CODEC(T64, ZSTD(1)),
    ADD COLUMN IF NOT EXISTS error_at SimpleAggregateFunction(max, Tuple(UInt8, UInt64, String, String))
        DEFAULT (toUInt8(finalizeAggregation(last_error_code) != '' OR finalizeAggregation(last_error_message) != ''), last_seq,
                 finalizeAggregation(last_error_code), finalizeAggregation(last_error_message)) CODEC(ZSTD(3)),
    ADD COLUMN IF NOT EXISTS node_at SimpleAggregateFunction(max, Tuple(UInt64, String))
        DEFAULT (last_seq, finalizeAggregation(last_node)) CODEC(ZSTD(3));

ALTER TABLE `statustrace`.`events_mv` MODIFY QUERY
SELECT
    tenant, namespace, function, qualifier, request_id,
    toUInt64(seq) * 256 + toUInt8(indexOf(['QUEUED','RUNNING','RETRYING','TERMINATING','FINISHED','FAILED','ABORTED','EXPIRED'], to_state)) AS state_key,
    seq AS last_seq,
    attempt AS attempts,
    toDateTime64(toStartOfMillisecond(time), 9, 'UTC') AS first_time,
    toDateTime64(toStartOfMillisecond(time), 9, 'UTC') AS last_time,
    if(to_state = 'QUEUED', toDateTime64(toStartOfMillisecond(time), 9, 'UTC'), NULL) AS start_time,
    if(to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED'), toDateTime64(toStartOfMillisecond(time), 9, 'UTC'), NULL) AS end_time,
    (toUInt8(error_code != '' OR error_message != ''), seq, CAST(error_code, 'String'), error_message) AS error_at,
    (seq, CAST(node, 'String')) AS node_at,
    invoke_type,
    trace_id
FROM `statustrace`.`transitions`;

-- migration transitions_minute: one set of transition hashes per minute, state and error code serves the counts and the duration digests (stats_minute and durations_minute dropped)
CREATE TABLE IF NOT EXISTS `statustrace`.`transitions_minute`
(
    tenant      LowCardinality(String),
    namespace   LowCardinality(String),
    function    LowCardinality(String),
    qualifier   LowCardinality(String),
    bucket      DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    to_state    LowCardinality(String),
    error_code  LowCardinality(String),
    transitions SimpleAggregateFunction(maxMap, Tuple(Array(UInt64), Array(UInt32))) CODEC(T64, ZSTD(1))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toDate(bucket)
ORDER BY (tenant, namespace, function, qualifier, bucket, to_state, error_code)
TTL bucket + toIntervalSecond(259200)
SETTINGS ttl_only_drop_parts = 1, index_granularity = 8192;

CREATE MATERIALIZED VIEW IF NOT EXISTS `statustrace`.`transitions_minute_mv` TO `statustrace`.`transitions_minute` AS
WITH multiIf(from_state = 'QUEUED' AND to_state = 'RUNNING', 1,
             from_state = 'RUNNING', 2,
             from_state = 'RETRYING' AND to_state = 'RUNNING', 3, 0) AS step_kind
SELECT
    tenant, namespace, function, qualifier,
    toStartOfMinute(toDateTime(time, 'UTC')) AS bucket,
    to_state, error_code,
    maxMap([cityHash64(request_id, seq)], [bitOr(bitOr(bitShiftLeft(toUInt32(if((step_kind != 0 AND from_state_ns > 0), step_kind, 0)), 25), bitShiftLeft(toUInt32((to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED') AND event_ns > 0)), 24)), bitOr(bitShiftLeft(toUInt32(if((step_kind != 0 AND from_state_ns > 0), least(toUInt16(least(floor(log(toFloat64(greatest(from_state_ns, 1))) / log(1.02)), 65535)), 4095), 0)), 12), toUInt32(if((to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED') AND event_ns > 0), least(toUInt16(least(floor(log(toFloat64(greatest(event_ns, 1))) / log(1.02)), 65535)), 4095), 0))))]) AS transitions
FROM `statustrace`.`transitions`
GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code;

-- once per row of: SELECT DISTINCT partition_id FROM system.parts WHERE database = 'statustrace' AND table = 'transitions' AND active ORDER BY partition_id
INSERT INTO `statustrace`.`transitions_minute`
WITH multiIf(from_state = 'QUEUED' AND to_state = 'RUNNING', 1,
             from_state = 'RUNNING', 2,
             from_state = 'RETRYING' AND to_state = 'RUNNING', 3, 0) AS step_kind
SELECT
    tenant, namespace, function, qualifier,
    toStartOfMinute(toDateTime(time, 'UTC')) AS bucket,
    to_state, error_code,
    maxMap([cityHash64(request_id, seq)], [bitOr(bitOr(bitShiftLeft(toUInt32(if((step_kind != 0 AND from_state_ns > 0), step_kind, 0)), 25), bitShiftLeft(toUInt32((to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED') AND event_ns > 0)), 24)), bitOr(bitShiftLeft(toUInt32(if((step_kind != 0 AND from_state_ns > 0), least(toUInt16(least(floor(log(toFloat64(greatest(from_state_ns, 1))) / log(1.02)), 65535)), 4095), 0)), 12), toUInt32(if((to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED') AND event_ns > 0), least(toUInt16(least(floor(log(toFloat64(greatest(event_ns, 1))) / log(1.02)), 65535)), 4095), 0))))]) AS transitions
FROM `statustrace`.`transitions`
WHERE _partition_id = {partition_id}
GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code;

DROP VIEW IF EXISTS `statustrace`.`stats_minute_mv`;

DROP VIEW IF EXISTS `statustrace`.`durations_minute_mv`;

DROP TABLE IF EXISTS `statustrace`.`stats_minute`;

DROP TABLE IF EXISTS `statustrace`.`durations_minute`;

-- migration transitions: from_state_ns and event_ns expire at once (column TTL): the view reads them on insert, nothing reads them after
ALTER TABLE `statustrace`.`transitions`
    MODIFY COLUMN from_state_ns UInt64 DEFAULT 0 CODEC(T64, ZSTD(1)) TTL toDateTime(time),
    MODIFY COLUMN event_ns UInt64 DEFAULT 0 CODEC(T64, ZSTD(1)) TTL toDateTime(time)
SETTINGS materialize_ttl_after_modify = 0;

-- migration events: rows written before version 6 store the new columns, and the argMax columns nobody reads are dropped
-- skipped when not 0: SELECT toUInt64(count() = 0) AS n FROM system.columns WHERE database = 'statustrace' AND table = 'events' AND name = 'state_key' AND default_kind = 'DEFAULT'
ALTER TABLE `statustrace`.`events`
    MATERIALIZE COLUMN state_key,
    MATERIALIZE COLUMN error_at,
    MATERIALIZE COLUMN node_at
SETTINGS mutations_sync = 2;

-- skipped when not 0: SELECT toUInt64(count() = 0) AS n FROM system.columns WHERE database = 'statustrace' AND table = 'events' AND name = 'state_key' AND default_kind = 'DEFAULT'
ALTER TABLE `statustrace`.`events`
    MODIFY COLUMN state_key REMOVE DEFAULT,
    MODIFY COLUMN error_at REMOVE DEFAULT,
    MODIFY COLUMN node_at REMOVE DEFAULT;

ALTER TABLE `statustrace`.`events`
    DROP COLUMN IF EXISTS state,
    DROP COLUMN IF EXISTS last_error_code,
    DROP COLUMN IF EXISTS last_error_message,
    DROP COLUMN IF EXISTS last_node;

-- migration transitions: stronger codecs on the small columns (ZSTD(9) on the low-cardinality ones, DoubleDelta on seq)
ALTER TABLE `statustrace`.`transitions`
    MODIFY COLUMN function   LowCardinality(String) CODEC(ZSTD(9)),
    MODIFY COLUMN qualifier  LowCardinality(String) CODEC(ZSTD(9)),
    MODIFY COLUMN seq        UInt64 CODEC(DoubleDelta, ZSTD(1)),
    MODIFY COLUMN from_state LowCardinality(String) CODEC(ZSTD(9)),
    MODIFY COLUMN to_state   LowCardinality(String) CODEC(ZSTD(9)),
    MODIFY COLUMN error_code LowCardinality(String) CODEC(ZSTD(9)),
    MODIFY COLUMN node       LowCardinality(String) CODEC(ZSTD(9)),
    MODIFY COLUMN state_rank UInt8 MATERIALIZED toUInt8(indexOf(['QUEUED','RUNNING','RETRYING','TERMINATING','FINISHED','FAILED','ABORTED','EXPIRED'], to_state)) CODEC(ZSTD(9));

-- migration transitions_minute_mv sorts each row's (hash, duration key) pairs once instead of building a maxMap
ALTER TABLE `statustrace`.`transitions_minute_mv` MODIFY QUERY
WITH multiIf(from_state = 'QUEUED' AND to_state = 'RUNNING', 1,
             from_state = 'RUNNING', 2,
             from_state = 'RETRYING' AND to_state = 'RUNNING', 3, 0) AS step_kind
SELECT
    tenant, namespace, function, qualifier,
    toStartOfMinute(toDateTime(time, 'UTC')) AS bucket,
    to_state, error_code,
    arraySort(groupArray((cityHash64(request_id, seq), bitOr(bitOr(bitShiftLeft(toUInt32(if((step_kind != 0 AND from_state_ns > 0), step_kind, 0)), 25), bitShiftLeft(toUInt32((to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED') AND event_ns > 0)), 24)), bitOr(bitShiftLeft(toUInt32(if((step_kind != 0 AND from_state_ns > 0), least(toUInt16(least(floor(log(toFloat64(greatest(from_state_ns, 1))) / log(1.02)), 65535)), 4095), 0)), 12), toUInt32(if((to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED') AND event_ns > 0), least(toUInt16(least(floor(log(toFloat64(greatest(event_ns, 1))) / log(1.02)), 65535)), 4095), 0))))))) AS pairs,
    (arrayMap(p -> p.1, pairs), arrayMap(p -> p.2, pairs)) AS transitions
FROM `statustrace`.`transitions`
GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code;

-- migration transitions: the exporter sends each row's duration key (duration_key) instead of two durations
ALTER TABLE `statustrace`.`transitions`
    ADD COLUMN IF NOT EXISTS duration_key UInt32
        DEFAULT bitOr(bitOr(bitShiftLeft(toUInt32(if((multiIf(from_state = 'QUEUED' AND to_state = 'RUNNING', 1, from_state = 'RUNNING', 2, from_state = 'RETRYING' AND to_state = 'RUNNING', 3, 0) != 0 AND from_state_ns > 0), multiIf(from_state = 'QUEUED' AND to_state = 'RUNNING', 1, from_state = 'RUNNING', 2, from_state = 'RETRYING' AND to_state = 'RUNNING', 3, 0), 0)), 25), bitShiftLeft(toUInt32((to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED') AND event_ns > 0)), 24)), bitOr(bitShiftLeft(toUInt32(if((multiIf(from_state = 'QUEUED' AND to_state = 'RUNNING', 1, from_state = 'RUNNING', 2, from_state = 'RETRYING' AND to_state = 'RUNNING', 3, 0) != 0 AND from_state_ns > 0), least(toUInt16(least(floor(log(toFloat64(greatest(from_state_ns, 1))) / log(1.02)), 65535)), 4095), 0)), 12), toUInt32(if((to_state IN ('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED') AND event_ns > 0), least(toUInt16(least(floor(log(toFloat64(greatest(event_ns, 1))) / log(1.02)), 65535)), 4095), 0))))
        CODEC(ZSTD(1)) TTL toDateTime(time)
SETTINGS materialize_ttl_after_modify = 0;

ALTER TABLE `statustrace`.`transitions_minute_mv` MODIFY QUERY
SELECT
    tenant, namespace, function, qualifier,
    toStartOfMinute(toDateTime(time, 'UTC')) AS bucket,
    to_state, error_code,
    arraySort(groupArray((cityHash64(request_id, seq), duration_key))) AS pairs,
    (pairs.1, pairs.2) AS transitions
FROM `statustrace`.`transitions`
GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code;

-- migration transitions: ZSTD(6) instead of ZSTD(9) on the low-cardinality columns and state_rank (cheaper inserts, same bytes within 0.1 per transition)
ALTER TABLE `statustrace`.`transitions`
    MODIFY COLUMN function   LowCardinality(String) CODEC(ZSTD(6)),
    MODIFY COLUMN qualifier  LowCardinality(String) CODEC(ZSTD(6)),
    MODIFY COLUMN from_state LowCardinality(String) CODEC(ZSTD(6)),
    MODIFY COLUMN to_state   LowCardinality(String) CODEC(ZSTD(6)),
    MODIFY COLUMN error_code LowCardinality(String) CODEC(ZSTD(6)),
    MODIFY COLUMN node       LowCardinality(String) CODEC(ZSTD(6)),
    MODIFY COLUMN state_rank UInt8 MATERIALIZED toUInt8(indexOf(['QUEUED','RUNNING','RETRYING','TERMINATING','FINISHED','FAILED','ABORTED','EXPIRED'], to_state)) CODEC(ZSTD(6));

-- retention
ALTER TABLE `statustrace`.`transitions` MODIFY TTL toDateTime(time) + toIntervalSecond(259200);
ALTER TABLE `statustrace`.`events` MODIFY TTL toDateTime(last_time) + toIntervalSecond(259200);
ALTER TABLE `statustrace`.`transitions_minute` MODIFY TTL bucket + toIntervalSecond(259200);
