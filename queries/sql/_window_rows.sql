{{- /*
_window_rows: the deduplicated transitions (request_id, seq, from_state,
to_state, time) of a window, as in transitions_window but only the columns
a duration needs. Parameters: as transitions_window.
*/ -}}
SELECT
                request_id,
                seq,
                from_state,
                to_state,
                time
            FROM {{.Transitions}}
            WHERE {{template "_scope.sql" .}}
              AND {{template "_keys.sql" .}}
              AND time >= {{cutoff}}
              AND time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
              AND time < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
            ORDER BY request_id ASC, seq ASC, {{stateRank "to_state"}} DESC
            LIMIT 1 BY request_id, seq
