{{- /*
_key_filters: tenant, namespace and function variables.
*/ -}}
{{template "_tenant_filter.sql" .}}
      AND {{template "_namespace_filter.sql" .}}
      AND {{template "_function_filter.sql" .}}