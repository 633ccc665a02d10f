{{- /*
overview_run_duration: each attempt, RUNNING to its outcome, by the interval
the attempt ended in.
*/ -}}
{{template "_duration_digest.sql" (digest . "run")}}
