{{- /*
_failure_rate: failed (public status FAILED, incl. expired) over every
terminal state, of the counts n of _stats_rows; NULL when none ended.
*/ -}}
sumIf(n, to_state IN ({{statesOf "failed"}})) / nullIf(sumIf(n, {{isTerminal "to_state"}}), 0)