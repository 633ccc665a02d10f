{{- /*
_namespace_filter: the namespace variable; All filters nothing.
*/ -}}
$__conditionalAll(namespace = decodeURLComponent('${namespace:percentencode}'), $namespace)