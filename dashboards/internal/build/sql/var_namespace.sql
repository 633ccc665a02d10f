{{- /*
var_namespace: the namespaces stats_minute saw in the time range.
*/ -}}
SELECT DISTINCT namespace FROM {{.Stats}}
WHERE $__timeFilter(bucket) AND bucket >= {{cutoff}} AND {{template "_tenant_filter.sql" .}}
ORDER BY namespace
