// Package dashboards holds statustrace's Grafana dashboards for the
// grafana-clickhouse-datasource plugin, as the JSON files Grafana
// provisions (deploy/grafana mounts this folder):
//
//   - overview.json: states over time, failure rate, in-flight events,
//     queue wait and run duration percentiles, top failing functions;
//   - explorer.json: a filterable event list with request ID search,
//     linking to the event dashboard;
//   - event.json: one event's status, transition timeline, attempts,
//     errors and its trace (Grafana's trace view over otel_traces).
//
// They are generated from internal/build (Go, with the Grafana foundation
// SDK, for layout) and internal/build/sql/*.sql (every panel's and
// variable's query, rendered by internal/sqltmpl with the state rules of
// package event and the tables of internal/schema, Grafana macros left as
// text); edit either and run `go test ./dashboards -run TestGenerated
// -update`. The tests validate every file with the SDK and run every
// panel's SQL, macros expanded, against a real ClickHouse engine.
package dashboards

import "embed"

// FS holds the dashboard JSON files.
//
//go:embed *.json
var FS embed.FS
