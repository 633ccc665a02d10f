{{- /*
_tenant_filter: the tenant variable; All filters nothing.
*/ -}}
$__conditionalAll(tenant = decodeURLComponent('${tenant:percentencode}'), $tenant)