package queries

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"text/template"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
)

// The SQL lives in sql/*.sql, one file per view or named query, each with a
// header comment that documents its parameters and columns. Files starting
// with "_" are fragments the others include. The files are text/template
// sources: table names, the retention cutoff and the state rank come from
// internal/schema, the public-status mapping from event, and the
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
var named = []string{"event_page", "event_count", "status_stats", "backlog", "duration_digests"}

type tmplData struct {
	Transitions, Events, Stats string
	Durations                  string
	Cutoff, Rank               string
	Order, After               string // event_page only
}

// publicExpr maps a detailed-state column to the public status with the
// same rules as event.State.Public, generated from it so the two agree.
func publicExpr(col string) string {
	groups := map[string][]string{}
	for s := event.StateQueued; s.Valid(); s++ {
		groups[s.Public()] = append(groups[s.Public()], "'"+s.String()+"'")
	}
	var b strings.Builder
	b.WriteString("multiIf(")
	publics := make([]string, 0, len(groups))
	for p := range groups {
		if p != "RUNNING" {
			publics = append(publics, p)
		}
	}
	sort.Strings(publics)
	for _, p := range publics {
		fmt.Fprintf(&b, "%s IN (%s), '%s', ", col, strings.Join(groups[p], ", "), p)
	}
	b.WriteString("'RUNNING')")
	return b.String()
}

// waitingExpr is true for a detailed-state column whose event waits for a
// worker (event.State.Waiting), generated from the event package.
func waitingExpr(col string) string {
	names := []string{}
	for _, s := range event.WaitingStates() {
		names = append(names, "'"+s.String()+"'")
	}
	return col + " IN (" + strings.Join(names, ", ") + ")"
}

// identOK accepts the column names templates pass to public: the .sql files
// are ours, but a typo should fail at init, not produce odd SQL.
func identOK(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func parseTemplates() (*template.Template, error) {
	root := template.New("").Option("missingkey=error").Funcs(template.FuncMap{
		"public": func(col string) (string, error) {
			if !identOK(col) {
				return "", fmt.Errorf("public: %q is not a column name", col)
			}
			return publicExpr(col), nil
		},
		"waiting": func(col string) (string, error) {
			if !identOK(col) {
				return "", fmt.Errorf("waiting: %q is not a column name", col)
			}
			return waitingExpr(col), nil
		},
	})
	files, err := fs.Glob(sqlFS, "sql/*.sql")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		src, err := sqlFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(f, "sql/")
		if _, err := root.New(name).Parse(string(src)); err != nil {
			return nil, fmt.Errorf("parse %s: %w", f, err)
		}
	}
	return root, nil
}

func baseData() tmplData {
	return tmplData{
		Transitions: schema.Transitions,
		Events:      schema.Events,
		Stats:       schema.Stats,
		Durations:   schema.Durations,
		Cutoff:      schema.RetentionCutoffExpr,
		Rank:        schema.StateRankExpr,
	}
}

func execute(t *template.Template, name string, d tmplData) (string, error) {
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name+".sql", d); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return strings.TrimSpace(b.String()), nil
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
	sql  map[string]string // views and named queries without variants
	page map[pageKey]string
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
	r := rendered{sql: map[string]string{}, page: map[pageKey]string{}}
	for _, name := range append(append([]string{}, Views...), named...) {
		if name == "event_page" {
			continue
		}
		s, err := execute(t, name, baseData())
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
	}
	return r, nil
}

// SQL returns the rendered text of a view or named query (without the
// CREATE VIEW around a view), or "" if there is no such name. event_page is
// returned in its start-time, descending variant.
func SQL(name string) string {
	if name == "event_page" {
		return compiled.page[pageKey{OrderByStartTime, true}]
	}
	return compiled.sql[name]
}
