package dashboards_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/statustrace/statustrace/dashboards"
	"github.com/statustrace/statustrace/dashboards/internal/build"
	"github.com/statustrace/statustrace/dashboards/internal/macros"
	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/plugin/spans"
	"github.com/statustrace/statustrace/testkit/chtest"
)

// result is a query's columns and rows, values as clickhouse-go scans them.
type result struct {
	cols []string
	rows [][]any
}

func (r result) col(name string) []any {
	i := slices.Index(r.cols, name)
	if i < 0 {
		return nil
	}
	out := make([]any, len(r.rows))
	for j, row := range r.rows {
		out[j] = row[i]
	}
	return out
}

// runSQL runs a query. Its columns come from DESCRIBE, so that a query
// that returns no rows is still checked for the columns its panel needs.
func runSQL(ctx context.Context, db *chtest.DB, sql string) (result, error) {
	res := result{}
	desc, err := db.Conn.Query(ctx, "DESCRIBE ("+sql+")")
	if err != nil {
		return res, fmt.Errorf("describe: %w", err)
	}
	for desc.Next() {
		vals := make([]any, len(desc.ColumnTypes()))
		for i, ct := range desc.ColumnTypes() {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := desc.Scan(vals...); err != nil {
			desc.Close()
			return res, fmt.Errorf("describe: %w", err)
		}
		res.cols = append(res.cols, *vals[0].(*string))
	}
	desc.Close()
	if err := desc.Err(); err != nil {
		return res, fmt.Errorf("describe: %w", err)
	}
	rows, err := db.Conn.Query(ctx, sql)
	if err != nil {
		return result{}, err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return res, err
		}
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			row[i] = reflect.ValueOf(p).Elem().Interface()
		}
		res.rows = append(res.rows, row)
	}
	return res, rows.Err()
}

// num and text read a scanned value (pointers are Nullable columns).
func num(v any) float64 {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return 0
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	}
	panic(fmt.Sprintf("not a number: %T %v", v, v))
}

func text(v any) string {
	if p, ok := v.(*string); ok {
		if p == nil {
			return ""
		}
		return *p
	}
	return fmt.Sprint(v)
}

func texts(vs []any) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = text(v)
	}
	return out
}

// scenario is one setting of the template variables, per dashboard.
type scenario struct {
	name string
	vars map[string]macros.Var
	week bool // a 7-day range: wider than the retention, so expired rows are in range
}

var (
	allTenants    = macros.All("acme", "globex")
	allNamespaces = macros.All("media", "shop")
	allFunctions  = macros.All("checkout", "resize", "transcode")
	allStates     = macros.All(build.States...)
	hostile       = "' OR 1=1 --\\'\"\n" + strings.Repeat("\\x'", 3400) // ~10 kB
)

func scenarios(uid string) []scenario {
	if uid == build.EventUID {
		return []scenario{
			{"acme", map[string]macros.Var{"tenant": macros.Single("acme"), "request_id": macros.Single("r-fail-1")}, false},
			{"all", map[string]macros.Var{"tenant": allTenants, "request_id": macros.Single(hostileID)}, true},
			{"filtered", map[string]macros.Var{"tenant": macros.Single("acme"), "request_id": macros.Single("r-retry-1")}, false},
			{"other tenant", map[string]macros.Var{"tenant": macros.Single("globex"), "request_id": macros.Single("r-fail-1")}, false},
			{"hostile", map[string]macros.Var{"tenant": macros.Single(hostile), "request_id": macros.Single(hostile)}, false},
			{"empty", map[string]macros.Var{"tenant": allTenants, "request_id": macros.Single("")}, false},
		}
	}
	return []scenario{
		{"acme", map[string]macros.Var{"tenant": macros.Single("acme"), "namespace": allNamespaces, "function": allFunctions,
			"status": allStates, "request_id": macros.Single("")}, false},
		{"all", map[string]macros.Var{"tenant": allTenants, "namespace": allNamespaces, "function": allFunctions,
			"status": allStates, "request_id": macros.Single("")}, true},
		{"filtered", map[string]macros.Var{"tenant": macros.Single("acme"), "namespace": macros.Single("shop"),
			"function": macros.Single("checkout"), "status": macros.Multiple("FAILED", "EXPIRED"), "request_id": macros.Single("")}, false},
		{"search", map[string]macros.Var{"tenant": allTenants, "namespace": allNamespaces, "function": allFunctions,
			"status": allStates, "request_id": macros.Single(hostileID)}, false},
		{"hostile", map[string]macros.Var{"tenant": macros.Single(hostile), "namespace": macros.Single(hostile),
			"function": macros.Single(hostile), "status": macros.Multiple("FAILED"), "request_id": macros.Single(hostile)}, false},
	}
}

// expectation is what a panel's query must return: its columns, in order,
// and checks of values against the seed model per scenario.
type expectation struct {
	cols  []string
	check func(t *testing.T, sc string, s seeded, r result)
}

// TestPanelSQL runs every panel query and every variable query of every
// dashboard, expanded as Grafana and the ClickHouse plugin expand them,
// against a real engine holding the seeded data, in several variable
// settings (including hostile values), and checks the columns each panel
// needs and the values it shows.
func TestPanelSQL(t *testing.T) {
	all := load(t)
	db := chtest.New(t)
	s := seed(t, db)
	ctx := context.Background()
	base := macros.Query{From: s.now.Add(-6 * time.Hour), To: s.now.Add(time.Minute), Interval: time.Minute}
	exps := expectations()

	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	covered := map[string]bool{}
	for _, name := range names {
		d := all[name]
		uid := deref(d.Uid)
		for _, p := range d.Panels {
			title := deref(p.Panel.Title)
			key := uid + "/" + title
			exp, ok := exps[key]
			if !ok {
				t.Errorf("%s: no expectation for panel %q: add one to expectations()", name, title)
				continue
			}
			covered[key] = true
			q := p.Panel.Targets[0].(build.Query)
			fields := linkFields(t, p.Panel)
			for _, sc := range scenarios(uid) {
				t.Run(uid+"/"+title+"/"+sc.name, func(t *testing.T) {
					qq := base
					qq.Vars = sc.vars
					if sc.week {
						qq.From = s.now.Add(-7 * 24 * time.Hour)
					}
					sql, err := macros.Expand(q.RawSql, qq)
					if err != nil {
						t.Fatalf("expand: %v", err)
					}
					r, err := runSQL(ctx, db, sql)
					if err != nil {
						t.Fatalf("query failed: %v\n%s", clip(err.Error()), clip(sql))
					}
					if !slices.Equal(r.cols, exp.cols) {
						t.Fatalf("columns %v, want %v", r.cols, exp.cols)
					}
					for _, f := range fields {
						if !slices.Contains(r.cols, f) {
							t.Errorf("a data link uses ${__data.fields.%s}, which the query does not return", f)
						}
					}
					if q.Format == build.FormatTimeSeries {
						checkTimeSeries(t, r)
					}
					if exp.check != nil {
						exp.check(t, sc.name, s, r)
					}
				})
			}
		}
		testVariables(t, ctx, db, s, d, base)
	}
	for key := range exps {
		if !covered[key] {
			t.Errorf("expectation %q matches no panel", key)
		}
	}
	testExploreLink(t, ctx, db, s, all, base)
}

// checkTimeSeries: the plugin pivots long frames on a first time column
// sorted ascending.
func checkTimeSeries(t *testing.T, r result) {
	t.Helper()
	if len(r.cols) == 0 || r.cols[0] != "time" {
		t.Fatalf("time series columns %v: want time first", r.cols)
	}
	var prev time.Time
	for i, v := range r.col("time") {
		tm, ok := v.(time.Time)
		if !ok {
			t.Fatalf("time column holds %T", v)
		}
		if i > 0 && tm.Before(prev) {
			t.Fatalf("time not ascending at row %d", i)
		}
		prev = tm
	}
}

var linkFieldRE = regexp.MustCompile(`__data\.fields\.(\w+)`)

func linkFields(t *testing.T, p *dashboard.Panel) []string {
	raw, err := json.Marshal(p.FieldConfig)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range linkFieldRE.FindAllStringSubmatch(string(raw), -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// testVariables runs the query variables: each lists one column of the
// seeded keys, narrowed by the variables before it.
func testVariables(t *testing.T, ctx context.Context, db *chtest.DB, s seeded, d dashboard.Dashboard, base macros.Query) {
	uid := deref(d.Uid)
	want := map[string]map[string][]string{ // variable -> scenario -> values
		"tenant":    {"acme": {"acme", "globex"}, "all": {"acme", "globex"}},
		"namespace": {"acme": {"media", "shop"}, "all": {"media", "shop"}, "filtered": {"media", "shop"}},
		"function":  {"acme": {"checkout", "resize", "transcode"}, "filtered": {"checkout", "resize"}},
	}
	for _, v := range d.Templating.List {
		if v.Type != dashboard.VariableTypeQuery {
			continue
		}
		for _, sc := range scenarios(uid) {
			t.Run(uid+"/variable "+v.Name+"/"+sc.name, func(t *testing.T) {
				qq := base
				qq.Vars = sc.vars
				if sc.week {
					qq.From = s.now.Add(-7 * 24 * time.Hour)
				}
				sql, err := macros.Expand(deref(v.Query.String), qq)
				if err != nil {
					t.Fatalf("expand: %v", err)
				}
				r, err := runSQL(ctx, db, sql)
				if err != nil {
					t.Fatalf("query failed: %v\n%s", clip(err.Error()), clip(sql))
				}
				if len(r.cols) != 1 {
					t.Fatalf("columns %v: a variable query returns one column", r.cols)
				}
				if w, ok := want[v.Name][sc.name]; ok {
					if got := texts(r.col(r.cols[0])); !slices.Equal(got, w) {
						t.Errorf("values %q, want %q", got, w)
					}
				}
				if sc.name == "hostile" && len(r.rows) != 0 && v.Name != "tenant" {
					t.Errorf("hostile filter matched %d rows", len(r.rows))
				}
			})
		}
	}
}

// testExploreLink runs the SQL inside the explorer's trace data link.
func testExploreLink(t *testing.T, ctx context.Context, db *chtest.DB, s seeded, all map[string]dashboard.Dashboard, base macros.Query) {
	t.Run("explore trace link", func(t *testing.T) {
		raw, err := dashboards.FS.ReadFile("explorer.json")
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`"url":\s*"/explore\?([^"]*)"`).FindStringSubmatch(string(raw))
		if m == nil {
			t.Fatal("no Explore link in the explorer")
		}
		params, err := url.ParseQuery(m[1])
		if err != nil {
			t.Fatal(err)
		}
		var panes map[string]struct {
			Datasource string `json:"datasource"`
			Queries    []build.Query
		}
		if err := json.Unmarshal([]byte(params.Get("panes")), &panes); err != nil {
			t.Fatalf("panes: %v", err)
		}
		q := panes["trace"].Queries[0]
		if err := q.Validate(); err != nil || q.QueryType != build.QueryTypeTraces || panes["trace"].Datasource != "${datasource}" {
			t.Fatalf("Explore query %+v (%v): want a valid traces query on ${datasource}", q, err)
		}
		tid := traceHex("r-fail-1")
		sql, err := macros.Expand(strings.ReplaceAll(q.RawSql, "${__value.raw}", tid), base)
		if err != nil {
			t.Fatal(err)
		}
		r, err := runSQL(ctx, db, sql)
		if err != nil {
			t.Fatalf("%v\n%s", clip(err.Error()), clip(sql))
		}
		if n := spanCount(s, "r-fail-1"); len(r.rows) != n {
			t.Errorf("%d spans, want %d", len(r.rows), n)
		}
	})
}

func traceHex(id string) string {
	tid := spans.TraceID(id)
	return hex.EncodeToString(tid[:])
}

// spanCount is the number of spans of an event: one per transition, and the
// root span once it ended.
func spanCount(s seeded, id string) int {
	e := find(s.events, id)
	n := len(e.steps)
	if current(e).Terminal() {
		n++
	}
	return n
}

// publicStatus is the established four-value status.
func publicStatus(e *seedEvent) string { return current(e).Public() }

func isCurrent(states ...event.State) func(*seedEvent) bool {
	return func(e *seedEvent) bool { return slices.Contains(states, current(e)) }
}

func and(fs ...func(*seedEvent) bool) func(*seedEvent) bool {
	return func(e *seedEvent) bool {
		for _, f := range fs {
			if !f(e) {
				return false
			}
		}
		return true
	}
}

func wantNum(t *testing.T, what string, got any, want float64) {
	t.Helper()
	if g := num(got); g < want-1e-9 || g > want+1e-9 {
		t.Errorf("%s = %v, want %v", what, g, want)
	}
}

func oneRow(t *testing.T, r result) []any {
	t.Helper()
	if len(r.rows) != 1 {
		t.Fatalf("%d rows, want 1", len(r.rows))
	}
	return r.rows[0]
}

// clip keeps failure output readable when a query holds a 10 kB value.
func clip(s string) string {
	s = regexp.MustCompile(`(%5Cx%27){8,}`).ReplaceAllString(s, "%5Cx%27...")
	if len(s) > 6000 {
		return s[:6000] + "..."
	}
	return s
}
