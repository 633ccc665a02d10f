{{- /*
_request_filter: the request_id variable; All (empty) filters nothing.
*/ -}}
$__conditionalAll(request_id = decodeURLComponent('${request_id:percentencode}'), $request_id)