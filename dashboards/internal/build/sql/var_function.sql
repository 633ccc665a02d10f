{{- /*
var_function: the functions the per-minute stats saw in the time range.
*/ -}}
SELECT DISTINCT function FROM {{.Stats}}
WHERE $__timeFilter(bucket) AND bucket >= {{cutoff}} AND {{template "_tenant_filter.sql" .}} AND {{template "_namespace_filter.sql" .}}
ORDER BY function
