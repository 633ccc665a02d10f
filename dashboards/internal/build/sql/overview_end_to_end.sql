{{- /*
overview_end_to_end: acceptance to the terminal state, retries and waits
included, by the interval the event ended in.
*/ -}}
{{template "_duration_digest.sql" (digest . "end_to_end")}}
