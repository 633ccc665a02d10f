package build

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
)

var (
	// eventSQL shows the event as field/value rows.
	eventSQL = sql(`
SELECT field, value
FROM (
    SELECT tenant, namespace, function, qualifier, request_id,` + eventColumns + `
    FROM events
    WHERE ` + eventScope + `
    GROUP BY tenant, namespace, function, qualifier, request_id
    HAVING last_seen >= ` + cutoff + `
)
ARRAY JOIN
    ['request_id', 'status', 'state', 'tenant', 'namespace', 'function', 'qualifier', 'invoke_type', 'attempts',
     'queued_at', 'ended_at', 'duration_s', 'last_error_code', 'last_error_message', 'last_node', 'trace_id'] AS field,
    [request_id, public_status, current_state, toString(tenant), toString(namespace), toString(function),
     toString(qualifier), toString(invoke), toString(attempt_count),
     ifNull(toString(queued_at), ''), ifNull(toString(ended_at), ''), toString(duration_s),
     error, message, node_name, trace] AS value`)

	timelineSQL = sql(`
SELECT time, to_state AS state
FROM ` + eventTransitions + `
ORDER BY time, seq`)

	traceIDSQL = sql(`
SELECT trace AS trace_id,
    toUnixTimestamp64Milli(first_seen) - 3600000 AS trace_from,
    toUnixTimestamp64Milli(last_seen) + 600000 AS trace_to
FROM (
    SELECT ` + eventColumns + `
    FROM events
    WHERE ` + eventScope + `
    GROUP BY tenant, namespace, function, qualifier, request_id
)
WHERE trace != ''`)

	transitionsTableSQL = sql(`
SELECT seq, time, from_state, to_state,
    dateDiff('millisecond', lagInFrame(time, 1, time) OVER (ORDER BY seq ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), time) / 1000 AS in_from_state_s,
    attempt, error_code, error_message, node, invoke_type, lower(hex(span_id)) AS span
FROM ` + eventTransitions + `
ORDER BY seq`)

	attemptsSQL = sql(`
SELECT attempt, started_at, ended_at, outcome, run_s,
    attempt_error AS error_code, attempt_message AS error_message, attempt_node AS node
FROM (
    SELECT attempt,
        minIf(time, to_state = 'RUNNING') AS started_at,
        argMax(time, seq) AS ended_at,
        argMax(to_state, seq) AS outcome,
        if(outcome = 'RUNNING', NULL, dateDiff('millisecond', started_at, ended_at) / 1000) AS run_s,
        argMaxIf(error_code, seq, error_code != '' OR error_message != '') AS attempt_error,
        argMaxIf(error_message, seq, error_code != '' OR error_message != '') AS attempt_message,
        argMinIf(node, seq, to_state = 'RUNNING') AS attempt_node
    FROM ` + eventTransitions + `
    WHERE attempt > 0
    GROUP BY attempt
)
ORDER BY attempt`)

	errorsSQL = sql(`
SELECT time, seq, attempt, from_state, to_state, error_code, error_message, node
FROM ` + eventTransitions + `
WHERE error_code != '' OR error_message != ''
ORDER BY seq`)

	// traceSQL is the event's trace from otel_traces, in the time window
	// of the event (the caller's spans may start before it was queued).
	traceSQL = sql(`
WITH (
    SELECT (replaceRegexpOne(lower(hex(max(trace_id))), '^0{32}$', ''), min(first_time), max(last_time))
    FROM events
    WHERE ` + eventScope + `
) AS ev
SELECT` + traceColumns + `
FROM otel_traces
WHERE TraceId = ev.1
  AND Timestamp >= ev.2 - INTERVAL 1 HOUR
  AND Timestamp <= ev.3 + INTERVAL 10 MINUTE
ORDER BY Timestamp`)
)

func event() *dashboard.DashboardBuilder {
	return newDashboard(EventUID, "statustrace: event",
		"One async event by request ID: current status, transition timeline, attempts, errors and its trace").
		WithVariable(datasourceVar()).
		WithVariable(tenantVar()).
		WithVariable(dashboard.NewTextBoxVariableBuilder("request_id").
			Label("Request ID").
			Description("The event's request ID (exact)")).
		WithPanel(newTable().Id(1).
			Title("Event").
			Description("Current status and fields of the event (independent of the time range).").
			Datasource(Datasource()).
			WithTarget(tableQuery(eventSQL)).
			GridPos(grid(0, 0, 8, 14)).
			ShowHeader(false).
			OverrideByName("value", append(mappings(), colorText()...))).
		WithPanel(statetimeline.NewPanelBuilder().Id(2).
			Title("Transition timeline").
			Description("The event's states over time, from its deduplicated transitions.").
			Datasource(Datasource()).
			WithTarget(tableQuery(timelineSQL)).
			GridPos(grid(8, 0, 16, 6)).
			Mappings(stateMappings()).
			ShowValue(common.VisibilityModeAlways).
			MergeValues(true).
			RowHeight(0.8)).
		WithPanel(stat.NewPanelBuilder().Id(3).
			Title("Trace").
			Description("The event's trace ID; click it to open the trace in Explore.").
			Datasource(Datasource()).
			WithTarget(tableQuery(traceIDSQL)).
			GridPos(grid(8, 6, 16, 8)).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false).Fields("/^trace_id$/")).
			TextMode(common.BigValueTextModeValue).
			ColorMode(common.BigValueColorModeNone).
			GraphMode(common.BigValueGraphModeNone).
			NoValue("no trace recorded").
			DataLinks([]cog.Builder[dashboard.DashboardLink]{link("Open trace ${__value.raw} in Explore",
				exploreTraceURL("${__value.raw}", "${__data.fields.trace_from}", "${__data.fields.trace_to}"))})).
		WithPanel(newTable().Id(4).
			Title("Transitions").
			Description("Every state change in seq order; in_from_state_s is the time spent in from_state.").
			Datasource(Datasource()).
			WithTarget(tableQuery(transitionsTableSQL)).
			GridPos(grid(0, 14, 24, 9)).
			OverrideByName("to_state", append(mappings(), colorText()...)).
			OverrideByName("from_state", append(mappings(), colorText()...)).
			OverrideByName("in_from_state_s", unit("s"))).
		WithPanel(newTable().Id(5).
			Title("Attempts").
			Description("One row per attempt: when it ran, how it ended, its error and node.").
			Datasource(Datasource()).
			WithTarget(tableQuery(attemptsSQL)).
			GridPos(grid(0, 23, 12, 8)).
			OverrideByName("outcome", append(mappings(), colorText()...)).
			OverrideByName("run_s", unit("s"))).
		WithPanel(newTable().Id(6).
			Title("Errors").
			Description("Transitions that carried an error.").
			Datasource(Datasource()).
			WithTarget(tableQuery(errorsSQL)).
			GridPos(grid(12, 23, 12, 8)).
			OverrideByName("to_state", append(mappings(), colorText()...))).
		WithPanel(dashboard.NewPanelBuilder().Id(7).
			Type("traces").
			Title("Trace view").
			Description("The event's trace from otel_traces (contrib ClickHouse exporter): status spans and the caller's spans when it sent a traceparent.").
			Datasource(Datasource()).
			WithTarget(traceQuery(traceSQL)).
			GridPos(grid(0, 31, 24, 16)))
}

// grid places a panel explicitly (the builder's automatic layout only fills
// rows left to right).
func grid(x, y, w, h uint32) dashboard.GridPos {
	return dashboard.GridPos{X: x, Y: y, W: w, H: h}
}
