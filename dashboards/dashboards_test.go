package dashboards_test

import (
	"encoding/json"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/statustrace/statustrace/dashboards"
	"github.com/statustrace/statustrace/dashboards/internal/build"
)

var registerOnce sync.Once

// noErrors maps the empty cog.BuildErrors that the SDK's strict unmarshal
// returns on success (a typed nil) to nil.
func noErrors(err error) error {
	if be, ok := err.(cog.BuildErrors); ok && len(be) == 0 {
		return nil
	}
	return err
}

// load reads every dashboard file strictly with the foundation SDK: an
// unknown or mistyped field anywhere (panel options of core panels, field
// config, targets through build.VariantConfig) is an error.
func load(t *testing.T) map[string]dashboard.Dashboard {
	t.Helper()
	registerOnce.Do(func() {
		plugins.RegisterDefaultPlugins()
		cog.NewRuntime().RegisterDataqueryVariant(build.VariantConfig())
	})
	names, err := fs.Glob(dashboards.FS, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 3 {
		t.Fatalf("dashboard files: %v, want overview, explorer and event", names)
	}
	out := map[string]dashboard.Dashboard{}
	for _, name := range names {
		raw, err := dashboards.FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard.Dashboard
		if err := noErrors(d.UnmarshalJSONStrict(raw)); err != nil {
			t.Fatalf("%s: strict unmarshal: %v", name, err)
		}
		// SDK v0.0.22's PanelOrRowPanel.UnmarshalJSONStrict drops every
		// panel (it returns the typed-nil success value of
		// Panel.UnmarshalJSONStrict before keeping the panel), so the panels
		// are read strictly one by one here.
		var rawPanels struct {
			Panels []json.RawMessage `json:"panels"`
		}
		if err := json.Unmarshal(raw, &rawPanels); err != nil {
			t.Fatal(err)
		}
		d.Panels = nil
		for i, rp := range rawPanels.Panels {
			var p dashboard.Panel
			if err := noErrors(p.UnmarshalJSONStrict(rp)); err != nil {
				t.Fatalf("%s: panel %d: strict unmarshal: %v", name, i, err)
			}
			d.Panels = append(d.Panels, dashboard.PanelOrRowPanel{Panel: &p})
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("%s: validate: %v", name, err)
		}
		out[name] = d
	}
	return out
}

// requiredVars are the template variables each dashboard must offer.
var requiredVars = map[string][]string{
	build.OverviewUID: {"datasource", "tenant", "namespace", "function", "status"},
	build.ExplorerUID: {"datasource", "tenant", "namespace", "function", "status", "request_id"},
	build.EventUID:    {"datasource", "tenant", "request_id"},
}

var panelTypes = []string{"stat", "table", "timeseries", "state-timeline", "traces"}

func TestDashboardsValidate(t *testing.T) {
	ds := build.Datasource()
	for name, d := range load(t) {
		t.Run(name, func(t *testing.T) {
			uid := deref(d.Uid)
			want, ok := requiredVars[uid]
			if !ok {
				t.Fatalf("uid %q is not one of the statustrace dashboards", uid)
			}
			if deref(d.Title) == "" || d.SchemaVersion < 36 || d.Time == nil || !slices.Contains(d.Tags, "statustrace") {
				t.Errorf("title %q, schemaVersion %d, time %v, tags %v: want a title, schemaVersion >= 36, a time range and the statustrace tag",
					deref(d.Title), d.SchemaVersion, d.Time, d.Tags)
			}

			vars := map[string]dashboard.VariableModel{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v
			}
			for _, n := range want {
				if _, ok := vars[n]; !ok {
					t.Errorf("variable %q missing", n)
				}
			}
			if v := vars["datasource"]; v.Type != dashboard.VariableTypeDatasource || v.Query == nil || deref(v.Query.String) != build.PluginID {
				t.Errorf("datasource variable: type %q query %v, want a data source variable of %s", v.Type, v.Query, build.PluginID)
			}
			if d.Templating.List[0].Name != "datasource" {
				t.Errorf("first variable is %q: the data source variable must come first (others use it)", d.Templating.List[0].Name)
			}
			for _, v := range d.Templating.List {
				switch v.Type {
				case dashboard.VariableTypeQuery:
					if v.Datasource == nil || deref(v.Datasource.Type) != build.PluginID || deref(v.Datasource.Uid) != build.DatasourceVar {
						t.Errorf("variable %s: data source %+v, want ${datasource}", v.Name, v.Datasource)
					}
					if v.Query == nil || deref(v.Query.String) == "" {
						t.Errorf("variable %s: no query", v.Name)
					}
					if v.IncludeAll == nil || !*v.IncludeAll {
						t.Errorf("variable %s: want an All option (filters use $__conditionalAll)", v.Name)
					}
				case dashboard.VariableTypeCustom:
					if v.Name == "status" && deref(v.Query.String) != strings.Join(build.States, ",") {
						t.Errorf("status values %q, want %v", deref(v.Query.String), build.States)
					}
				}
			}

			ids := map[uint32]bool{}
			var cells [24 * 100]bool
			for i, p := range d.Panels {
				if p.Panel == nil {
					t.Errorf("panel %d is a row: keep the dashboards flat", i)
					continue
				}
				p := p.Panel
				title := deref(p.Title)
				if p.Id == nil || ids[*p.Id] {
					t.Errorf("panel %q: missing or duplicate id", title)
				} else {
					ids[*p.Id] = true
				}
				if title == "" || deref(p.Description) == "" {
					t.Errorf("panel %d: want a title and a description", i)
				}
				if !slices.Contains(panelTypes, p.Type) {
					t.Errorf("panel %q: type %q not in %v", title, p.Type, panelTypes)
				}
				if g := p.GridPos; g == nil || g.W == 0 || g.H == 0 || g.X+g.W > 24 || g.Y+g.H > 100 {
					t.Errorf("panel %q: grid position %+v out of the 24-column grid", title, p.GridPos)
				} else {
					for x := g.X; x < g.X+g.W; x++ {
						for y := g.Y; y < g.Y+g.H; y++ {
							if cells[y*24+x] {
								t.Errorf("panel %q overlaps another at (%d,%d)", title, x, y)
							}
							cells[y*24+x] = true
						}
					}
				}
				if p.Datasource == nil || deref(p.Datasource.Type) != *ds.Type || deref(p.Datasource.Uid) != *ds.Uid {
					t.Errorf("panel %q: data source %s/%s, want %s/${datasource}", title, deref(deref(p.Datasource).Type), deref(deref(p.Datasource).Uid), build.PluginID)
				}
				if len(p.Targets) != 1 {
					t.Errorf("panel %q: %d targets, want 1", title, len(p.Targets))
				}
				for _, tg := range p.Targets {
					q, ok := tg.(build.Query)
					if !ok {
						t.Errorf("panel %q: target %T is not a ClickHouse query", title, tg)
						continue
					}
					if q.Datasource == nil || deref(q.Datasource.Type) != *ds.Type || deref(q.Datasource.Uid) != *ds.Uid {
						t.Errorf("panel %q: target data source %s/%s, want %s/${datasource}", title, deref(deref(q.Datasource).Type), deref(deref(q.Datasource).Uid), build.PluginID)
					}
					wantQT := map[string]string{"timeseries": build.QueryTypeTimeSeries, "traces": build.QueryTypeTraces}[p.Type]
					if wantQT == "" {
						wantQT = build.QueryTypeTable
					}
					if q.QueryType != wantQT {
						t.Errorf("panel %q (%s): queryType %q, want %q", title, p.Type, q.QueryType, wantQT)
					}
					for _, ref := range varRefs(q.RawSql) {
						if _, ok := vars[ref]; !ok {
							t.Errorf("panel %q: SQL uses $%s, which the dashboard does not define", title, ref)
						}
					}
				}
			}
		})
	}
}

// TestLinks checks every data link between the dashboards: it names an
// existing dashboard and only variables that dashboard has.
func TestLinks(t *testing.T) {
	all := load(t)
	byUID := map[string]dashboard.Dashboard{}
	for _, d := range all {
		byUID[deref(d.Uid)] = d
	}
	seen := map[string]bool{}
	for name, d := range all {
		raw, err := json.Marshal(d.Panels)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range urlRE.FindAllStringSubmatch(string(raw), -1) {
			u := m[1]
			seen[strings.SplitN(u, "?", 2)[0]] = true
			if strings.HasPrefix(u, "/explore?") {
				if !strings.Contains(u, "queryType%22%3A%22traces") || !strings.Contains(u, "${datasource}") {
					t.Errorf("%s: Explore link %q: want a traces query on ${datasource}", name, u)
				}
				continue
			}
			dm := dashURLRE.FindStringSubmatch(u)
			if dm == nil {
				t.Errorf("%s: link %q is neither a dashboard nor an Explore link", name, u)
				continue
			}
			target, ok := byUID[dm[1]]
			if !ok {
				t.Errorf("%s: link to unknown dashboard %q", name, dm[1])
				continue
			}
			have := map[string]bool{}
			for _, v := range target.Templating.List {
				have[v.Name] = true
			}
			for _, vm := range linkVarRE.FindAllStringSubmatch(u, -1) {
				v := vm[1] + vm[2]
				if !have[v] {
					t.Errorf("%s: link %q sets %q, which %s does not have", name, u, v, dm[1])
				}
			}
		}
	}
	for _, want := range []string{"/d/" + build.EventUID, "/d/" + build.ExplorerUID, "/explore"} {
		if !seen[want] {
			t.Errorf("no link to %s (have %v)", want, seen)
		}
	}
}

var (
	urlRE     = regexp.MustCompile(`"url":"([^"]*)"`)
	dashURLRE = regexp.MustCompile(`^/d/([a-z0-9-]+)\?`)
	linkVarRE = regexp.MustCompile(`var-(\w+)=|\$\{(\w+):queryparam\}`)
	sqlVarRE  = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)
)

// varRefs lists the template variables SQL refers to (not $__ macros).
func varRefs(sql string) []string {
	var out []string
	for _, m := range sqlVarRE.FindAllStringSubmatch(sql, -1) {
		if n := m[1] + m[2]; !strings.HasPrefix(n, "__") {
			out = append(out, n)
		}
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
