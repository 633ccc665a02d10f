-- Migration 9: events: rows written before version 6 store the new columns, and the argMax columns nobody reads are dropped.
-- Released: frozen. Statements end with a line holding only ";"; the comment
-- lines that open a statement document it and are not sent.

-- Since version 6 nothing writes the argMax columns (state,
-- last_error_code, last_error_message, last_node), yet every insert
-- still built an empty aggregate state for each of them per row: with
-- them dropped, inserts with both views ran about a quarter faster
-- (server-side, alternating). Rows written before version 6 read
-- state_key, error_at and node_at through a DEFAULT over those
-- columns, so first those parts store the values (MATERIALIZE COLUMN
-- fills only parts that lack the column; the rows written since keep
-- theirs), waiting for the mutation, then the defaults go, then the
-- columns. A rerun skips what is done.
{{skipUnlessDefault "events" "state_key"}}ALTER TABLE {{table "events"}}{{.OnCluster}}
    MATERIALIZE COLUMN state_key,
    MATERIALIZE COLUMN error_at,
    MATERIALIZE COLUMN node_at
SETTINGS mutations_sync = 2
;
{{skipUnlessDefault "events" "state_key"}}ALTER TABLE {{table "events"}}{{.OnCluster}}
    MODIFY COLUMN state_key REMOVE DEFAULT,
    MODIFY COLUMN error_at REMOVE DEFAULT,
    MODIFY COLUMN node_at REMOVE DEFAULT
;
ALTER TABLE {{table "events"}}{{.OnCluster}}
    DROP COLUMN IF EXISTS state,
    DROP COLUMN IF EXISTS last_error_code,
    DROP COLUMN IF EXISTS last_error_message,
    DROP COLUMN IF EXISTS last_node
;
-- The Distributed table's copy of the columns (cluster mode only;
-- renders empty, and is not sent, on a single node).
{{if clustered}}ALTER TABLE {{name "events"}}{{.OnCluster}}
    DROP COLUMN IF EXISTS state,
    DROP COLUMN IF EXISTS last_error_code,
    DROP COLUMN IF EXISTS last_error_message,
    DROP COLUMN IF EXISTS last_node{{end}}
;
