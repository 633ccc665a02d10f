package build

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
)

// searchingByID is true when a request ID is typed into the search box:
// $__conditionalAll(0, $request_id) is 0 then and 1=1 otherwise, so a
// lookup by ID ignores the time range and a browse does not.
const searchingByID = "NOT $__conditionalAll(0, $request_id)"

// explorerEvents are the events that match the filters and were active in
// the time range (first transition before its end, last after its start).
// The IN pre-selects the events touched since the range began, so that only
// those are aggregated; an event active in the range has such a row.
var explorerEvents = `
    SELECT tenant, namespace, function, qualifier, request_id,` + eventColumns + `
    FROM events
    WHERE ` + keyFilters + `
      AND ` + requestFilter + `
      AND (tenant, request_id) IN (
          SELECT tenant, request_id
          FROM events
          WHERE (last_time >= $__fromTime OR ` + searchingByID + `)
            AND ` + keyFilters + `
            AND ` + requestFilter + `)
    GROUP BY tenant, namespace, function, qualifier, request_id
    HAVING last_seen >= ` + cutoff + `
       AND ((last_seen >= $__fromTime AND first_seen <= $__toTime) OR ` + searchingByID + `)
       AND ` + statusFilter("current_state")

var (
	explorerTableSQL = sql(`
SELECT request_id, public_status AS status, current_state AS state,
    namespace, function, qualifier, tenant, invoke AS invoke_type, attempt_count AS attempts,
    first_seen, queued_at, ended_at, duration_s,
    error AS error_code, message AS error_message, node_name AS node, trace AS trace_id,
    toUnixTimestamp64Milli(first_seen) - 60000 AS link_from,
    toUnixTimestamp64Milli(last_seen) + 60000 AS link_to
FROM (` + explorerEvents + `
)
ORDER BY first_seen DESC, request_id
LIMIT 1000`)

	explorerCountSQL = sql(`
SELECT count() AS events,
    countIf(public_status = 'RUNNING') AS running,
    countIf(public_status = 'FINISHED') AS finished,
    countIf(public_status = 'FAILED') AS failed,
    countIf(public_status = 'ABORTED') AS aborted
FROM (` + explorerEvents + `
)`)
)

// eventURL opens the event dashboard for the table row's event.
const eventURL = "/d/" + EventUID + "?${datasource:queryparam}" +
	"&var-tenant=${__data.fields.tenant:percentencode}&var-request_id=${__data.fields.request_id:percentencode}" +
	"&from=${__data.fields.link_from}&to=${__data.fields.link_to}"

func explorer() *dashboard.DashboardBuilder {
	return newDashboard(ExplorerUID, "statustrace: event explorer",
		"Find async events by tenant, namespace, function, state or request ID; open one for its timeline, attempts, errors and trace").
		WithVariable(datasourceVar()).
		WithVariable(tenantVar()).
		WithVariable(namespaceVar()).
		WithVariable(functionVar()).
		WithVariable(statusVar()).
		WithVariable(dashboard.NewTextBoxVariableBuilder("request_id").
			Label("Request ID").
			Description("Exact request ID: searches the whole retention window, ignoring the time range")).
		WithPanel(stat.NewPanelBuilder().Id(1).
			Title("Matching events").
			Description("Events that match the filters (by public status); the table shows the newest 1000.").
			Datasource(Datasource()).
			WithTarget(tableQuery(explorerCountSQL)).
			Span(24).Height(4).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false).Fields("")).
			TextMode(common.BigValueTextModeValueAndName).
			ColorMode(common.BigValueColorModeNone).
			GraphMode(common.BigValueGraphModeNone)).
		WithPanel(newTable().Id(2).
			Title("Events").
			Description("Events active in the time range, newest first. Click a request ID for its detail, a trace ID for its trace.").
			Datasource(Datasource()).
			WithTarget(tableQuery(explorerTableSQL)).
			Span(24).Height(20).
			Filterable(true).
			OverrideByName("request_id", dataLinks(link("Event ${__value.raw}", eventURL))).
			OverrideByName("state", append(mappings(), colorText()...)).
			OverrideByName("status", append(mappings(), colorText()...)).
			OverrideByName("duration_s", unit("s")).
			OverrideByName("trace_id", dataLinks(link("Trace ${__value.raw}",
				exploreTraceURL("${__value.raw}", "${__data.fields.link_from}", "${__data.fields.link_to}")))).
			OverrideByName("link_from", hidden()).
			OverrideByName("link_to", hidden()))
}

// traceColumns are the columns Grafana's trace view reads (the plugin's
// trace-by-ID query shape) from the contrib exporter's otel_traces.
const traceColumns = `
    TraceId AS traceID,
    SpanId AS spanID,
    ParentSpanId AS parentSpanID,
    ServiceName AS serviceName,
    SpanName AS operationName,
    toUnixTimestamp64Nano(Timestamp) / 1000000 AS startTime,
    Duration / 1000000 AS duration,
    arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags,
    arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes)) AS serviceTags,
    if(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 2, 0) AS statusCode,
    StatusMessage AS statusMessage,
    SpanKind AS kind`

// exploreTraceSQL shows one trace, whose ID is inlined by the data link.
const exploreTraceSQL = `SELECT` + traceColumns + `
FROM otel_traces
WHERE TraceId = '` + traceIDToken + `' AND $__timeFilter(Timestamp)
ORDER BY Timestamp`

// Tokens survive URL encoding unchanged and are then replaced by the data
// link's own ${...} expressions, which Grafana fills in when clicked.
const (
	traceIDToken    = "XXTRACEIDXX"
	datasourceToken = "XXDATASOURCEXX"
	fromToken       = "XXFROMXX"
	toToken         = "XXTOXX"
)

// exploreTraceURL opens Grafana's trace view in Explore for a trace ID
// (a hex string, safe in SQL and URLs) between from and to (epoch ms).
func exploreTraceURL(traceID, from, to string) string {
	pane := map[string]any{
		"trace": map[string]any{
			"datasource": datasourceToken,
			"queries": []any{map[string]any{
				"refId":      "A",
				"datasource": map[string]any{"type": PluginID, "uid": datasourceToken},
				"editorType": "sql",
				"queryType":  QueryTypeTraces,
				"format":     FormatTrace,
				"rawSql":     exploreTraceSQL,
			}},
			"range": map[string]any{"from": fromToken, "to": toToken},
		},
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(pane); err != nil {
		panic(err) // static input
	}
	u := "/explore?schemaVersion=1&panes=" + url.QueryEscape(strings.TrimSpace(b.String()))
	return strings.NewReplacer(traceIDToken, traceID, datasourceToken, "${datasource}", fromToken, from, toToken, to).Replace(u)
}
