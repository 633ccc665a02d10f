package build

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
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
			WithTarget(tableQuery(sql("explorer_count"))).
			Span(24).Height(4).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false).Fields("")).
			TextMode(common.BigValueTextModeValueAndName).
			ColorMode(common.BigValueColorModeNone).
			GraphMode(common.BigValueGraphModeNone)).
		WithPanel(newTable().Id(2).
			Title("Events").
			Description("Events active in the time range, newest first. Click a request ID for its detail, a trace ID for its trace.").
			Datasource(Datasource()).
			WithTarget(tableQuery(sql("explorer_table"))).
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
				"rawSql":     sql("explore_trace"),
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
