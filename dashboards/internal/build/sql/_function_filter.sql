{{- /*
_function_filter: the function variable; All filters nothing.
*/ -}}
$__conditionalAll(function = decodeURLComponent('${function:percentencode}'), $function)