{{- /*
_searching_by_id is true when a request ID is typed into the search box:
$__conditionalAll(0, $request_id) is 0 then and 1=1 otherwise, so a lookup by
ID ignores the time range and a browse does not.
*/ -}}
NOT $__conditionalAll(0, $request_id)