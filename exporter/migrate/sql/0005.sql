-- Migration 5: transitions: span_id applies the all-zero rule of the plugin's span IDs (event.TransitionSpanID).
-- Released: frozen. Statements end with a line holding only ";"; the comment
-- lines that open a statement document it and are not sent.

-- span_id recomputes the plugin's span ID where span_id_override is
-- zero bytes (migration 1). It took the hash's first 8 bytes as they
-- were, while the plugin (event.TransitionSpanID) turns an all-zero
-- result, invalid in OpenTelemetry, into ...01: for that one hash in
-- 2^64 the stored span and the read one differed. The alias is now
-- generated from the Go rule's SQL twin (event.SQLTransitionSpanID). An
-- ALIAS is metadata only: no row is rewritten.
ALTER TABLE {{table "transitions"}}{{.OnCluster}}
    MODIFY COLUMN span_id FixedString(8) ALIAS if(span_id_override != unhex('0000000000000000'), span_id_override,
        {{transitionSpanID "request_id" "seq"}})
;
-- The Distributed table's copy of the column (cluster mode only;
-- renders empty, and is not sent, on a single node).
{{if clustered}}ALTER TABLE {{name "transitions"}}{{.OnCluster}}
    MODIFY COLUMN span_id FixedString(8) ALIAS if(span_id_override != unhex('0000000000000000'), span_id_override,
        {{transitionSpanID "request_id" "seq"}}){{end}}
;
