{{- /*
var_tenant: the tenants the per-minute stats saw in the time range.
*/ -}}
SELECT DISTINCT tenant FROM {{.Stats}}
WHERE $__timeFilter(bucket) AND bucket >= {{cutoff}}
ORDER BY tenant
