package queries

import (
	"embed"
	"fmt"
	"text/template"

	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/internal/sqltmpl"
)

// The SQL lives in sql/*.sql, one file per view or named query, each with a
// header comment that documents its parameters and columns. Files starting
// with "_" are fragments the others include. The files are text/template
// sources rendered by internal/sqltmpl: table names and the retention cutoff
// come from internal/schema, every state rule (names, terminal set, public
// status, rank) from package event, and the
// only other substitutions are the fixed ORDER BY / cursor fragments of
// event_page. User input never enters the text: every value is a ClickHouse
// query parameter ({name:Type}) bound by the driver.
//
//go:embed sql/*.sql
var sqlFS embed.FS

// Views are installed by Install as ClickHouse parameterized views of the
// same name, for Grafana and clickhouse-client. The Go package runs the same
// SQL inline (as a subquery), so a binary never depends on the version of
// the views installed in the database.
var Views = []string{
	"event_status",
	"event_timeline",
	"event_list",
	"status_counts",
	"status_series",
	"status_errors",
	"event_durations",
	"transitions_window",
}

// named are the queries only the Go package runs.
var named = []string{"event_page", "event_export", "event_count", "event_get", "status_stats", "transitions_export",
	"function_stats", "event_changes", "trace_spans", "backlog", "duration_digests"}

type tmplData struct {
	sqltmpl.Tables
	OtelTraces   string // the contrib exporter's spans table (trace_spans only)
	Order, After string // event_page and event_export only
	Since        bool   // event_list's pre-filter of changed events (event_changes only)
}

func parseTemplates() (*template.Template, error) {
	return sqltmpl.Parse(sqlFS, "sql/*.sql", nil)
}

func baseData() tmplData {
	return tmplData{Tables: sqltmpl.DefaultTables(), OtelTraces: schema.OtelTraces}
}

func execute(t *template.Template, name string, d tmplData) (string, error) {
	return sqltmpl.Execute(t, name, d)
}

// pageKey selects one of the four event_page variants.
type pageKey struct {
	by   OrderBy
	desc bool
}

// orderFragments are the only ORDER BY / cursor texts event_page is rendered
// with: fixed strings selected by validated enums.
var orderFragments = map[pageKey]struct{ order, after string }{
	{OrderByStartTime, false}: {"start_ns ASC, request_id ASC", "(start_ns, request_id) > ({after_ns:Int64}, {after_id:String})"},
	{OrderByStartTime, true}:  {"start_ns DESC, request_id DESC", "(start_ns, request_id) < ({after_ns:Int64}, {after_id:String})"},
	{OrderByEndTime, false}:   {"end_ns ASC, request_id ASC", "(end_ns, request_id) > ({after_ns:Int64}, {after_id:String})"},
	{OrderByEndTime, true}:    {"end_ns DESC, request_id DESC", "(end_ns, request_id) < ({after_ns:Int64}, {after_id:String})"},
}

// rendered holds every query, rendered once.
type rendered struct {
	sql    map[string]string // views and named queries without variants
	page   map[pageKey]string
	export map[pageKey]string // event_export
}

var compiled = mustRender()

func mustRender() rendered {
	r, err := render()
	if err != nil {
		panic(fmt.Sprintf("queries: embedded SQL does not render: %v", err))
	}
	return r
}

func render() (rendered, error) {
	t, err := parseTemplates()
	if err != nil {
		return rendered{}, err
	}
	r := rendered{sql: map[string]string{}, page: map[pageKey]string{}, export: map[pageKey]string{}}
	for _, name := range append(append([]string{}, Views...), named...) {
		if name == "event_page" || name == "event_export" {
			continue
		}
		d := baseData()
		if name == "event_changes" {
			d.Since = true
		}
		s, err := execute(t, name, d)
		if err != nil {
			return rendered{}, err
		}
		r.sql[name] = s
	}
	for k, f := range orderFragments {
		d := baseData()
		d.Order, d.After = f.order, f.after
		s, err := execute(t, "event_page", d)
		if err != nil {
			return rendered{}, err
		}
		r.page[k] = s
		if r.export[k], err = execute(t, "event_export", d); err != nil {
			return rendered{}, err
		}
	}
	return r, nil
}

// SQL returns the rendered text of a view or named query (without the
// CREATE VIEW around a view), or "" if there is no such name. event_page is
// and event_export are returned in their start-time, descending variant.
func SQL(name string) string {
	switch name {
	case "event_page":
		return compiled.page[pageKey{OrderByStartTime, true}]
	case "event_export":
		return compiled.export[pageKey{OrderByStartTime, true}]
	}
	return compiled.sql[name]
}
