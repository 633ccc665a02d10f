{{- /*
var_namespace: the namespaces the per-minute stats saw in the time range.
*/ -}}
SELECT DISTINCT namespace FROM {{.Stats}}
WHERE $__timeFilter(bucket) AND bucket >= {{cutoff}} AND {{template "_tenant_filter.sql" .}}
ORDER BY namespace
