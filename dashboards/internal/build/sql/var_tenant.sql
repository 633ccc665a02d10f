{{- /*
var_tenant: the tenants stats_minute saw in the time range.
*/ -}}
SELECT DISTINCT tenant FROM {{.Stats}}
WHERE $__timeFilter(bucket) AND bucket >= {{cutoff}}
ORDER BY tenant
