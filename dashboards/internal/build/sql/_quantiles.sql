{{- /*
_quantiles: p50, p90 and p99 of the column given as the template's data:
{{template "_quantiles.sql" "wait_s"}}.
*/ -}}
quantile(0.5)({{.}}) AS p50,
    quantile(0.9)({{.}}) AS p90,
    quantile(0.99)({{.}}) AS p99