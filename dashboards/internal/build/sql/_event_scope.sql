{{- /*
_event_scope restricts a table to the event of the detail dashboard: the
tenant comes from events (bloom filter on request_id), so that the
transitions lookup is a primary-key range even when tenant is All.
*/ -}}
tenant IN (SELECT tenant FROM {{.Events}} WHERE request_id = {{template "_request_id.sql" .}} AND {{template "_tenant_filter.sql" .}})
      AND request_id = {{template "_request_id.sql" .}}