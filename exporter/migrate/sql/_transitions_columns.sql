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