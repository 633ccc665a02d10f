{{- /*
_request_id: the event the detail dashboard shows.
*/ -}}
decodeURLComponent('${request_id:percentencode}')