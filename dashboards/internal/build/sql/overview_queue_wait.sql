{{- /*
overview_queue_wait: QUEUED to RUNNING, by the interval the event started in.
*/ -}}
{{template "_duration_digest.sql" (digest . "queue_wait")}}
