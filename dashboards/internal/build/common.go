// Package build defines statustrace's Grafana dashboards with the Grafana
// foundation SDK. The JSON files in dashboards/ are its output (the
// dashboards test regenerates them with -update and fails when they drift).
package build

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/table"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	evt "github.com/statustrace/statustrace/event"
)

// Dashboard UIDs, also used in links between the dashboards.
const (
	OverviewUID = "statustrace-overview"
	ExplorerUID = "statustrace-explorer"
	EventUID    = "statustrace-event"
)

// States are the detailed event states, in lifecycle order (package event).
var States = stateNames()

func stateNames() []string {
	var out []string
	for _, s := range evt.States() {
		out = append(out, s.String())
	}
	return out
}

// stateColors are used wherever a state is shown. Keyed by event.State so
// that a state added to package event without a colour fails TestStateColors.
var stateColors = map[evt.State]string{
	evt.StateQueued:      "blue",
	evt.StateRunning:     "yellow",
	evt.StateRetrying:    "orange",
	evt.StateTerminating: "purple",
	evt.StateFinished:    "green",
	evt.StateFailed:      "red",
	evt.StateAborted:     "#8c8c8c",
	evt.StateExpired:     "dark-red",
}

// File is one dashboard and the file it is stored in.
type File struct {
	Name      string // file name in dashboards/
	Dashboard dashboard.Dashboard
}

// All builds every dashboard.
func All() ([]File, error) {
	builders := []struct {
		name string
		b    *dashboard.DashboardBuilder
	}{
		{"overview.json", overview()},
		{"explorer.json", explorer()},
		{"event.json", event()},
	}
	out := make([]File, 0, len(builders))
	for _, x := range builders {
		d, err := x.b.Build()
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", x.name, err)
		}
		out = append(out, File{Name: x.name, Dashboard: d})
	}
	return out, nil
}

// Marshal is the stored form of a dashboard (indented, SQL operators and
// URL ampersands left readable).
func Marshal(d dashboard.Dashboard) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return unescapeHTML(b.Bytes()), nil
}

// unescapeHTML turns the \u0026, \u003c and \u003e escapes that the SDK's
// own MarshalJSON methods write back into &, < and > (equivalent JSON).
func unescapeHTML(in []byte) []byte {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		if in[i] != '\\' || i+1 >= len(in) {
			out = append(out, in[i])
			continue
		}
		if in[i+1] == 'u' && i+6 <= len(in) {
			switch string(in[i : i+6]) {
			case `\u0026`:
				out, i = append(out, '&'), i+5
				continue
			case `\u003c`:
				out, i = append(out, '<'), i+5
				continue
			case `\u003e`:
				out, i = append(out, '>'), i+5
				continue
			}
		}
		// any other escape: copy it whole so an escaped backslash is not
		// taken for the start of the next one
		out, i = append(out, in[i], in[i+1]), i+1
	}
	return out
}

func newDashboard(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"statustrace"}).
		Editable().
		Timezone("browser").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Time("now-6h", "now").
		Refresh("30s").
		Link(dashboard.NewDashboardLinkBuilder("statustrace").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"statustrace"}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true))
}

func datasourceVar() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder("datasource").
		Label("Data source").
		Type(PluginID).
		Description("ClickHouse data source whose default database is the statustrace database")
}

func str(s string) dashboard.StringOrMap { return dashboard.StringOrMap{String: &s} }

// queryVar is a single-value variable listed by the query of sql/<query>.sql,
// with All.
func queryVar(name, label, query string) *dashboard.QueryVariableBuilder {
	q := sql(query)
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(Datasource()).
		Query(str(q)).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		IncludeAll(true).
		Current(allOption())
}

func allOption() dashboard.VariableOption {
	t, v := "All", "$__all"
	return dashboard.VariableOption{
		Text:  dashboard.StringOrArrayOfString{String: &t},
		Value: dashboard.StringOrArrayOfString{String: &v},
	}
}

// The key variables list what the per-minute stats saw in the time range.
func tenantVar() *dashboard.QueryVariableBuilder {
	return queryVar("tenant", "Tenant", "var_tenant")
}

func namespaceVar() *dashboard.QueryVariableBuilder {
	return queryVar("namespace", "Namespace", "var_namespace")
}

func functionVar() *dashboard.QueryVariableBuilder {
	return queryVar("function", "Function", "var_function")
}

func statusVar() *dashboard.CustomVariableBuilder {
	values := ""
	for i, s := range States {
		if i > 0 {
			values += ","
		}
		values += s
	}
	return dashboard.NewCustomVariableBuilder("status").
		Label("State").
		Description("Detailed state: the current state of an event, or the state a transition entered").
		Values(str(values)).
		Multi(true).
		IncludeAll(true).
		Current(allOption())
}

// stateMappings colours state names.
func stateMappings() []dashboard.ValueMapping {
	opts := map[string]dashboard.ValueMappingResult{}
	for i, s := range evt.States() {
		color, idx := stateColors[s], int32(i)
		opts[s.String()] = dashboard.ValueMappingResult{Color: &color, Index: &idx}
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: opts}}}
}

// link is a data link (Grafana interpolates ${...} in url when clicked).
func link(title, url string) cog.Builder[dashboard.DashboardLink] {
	return dashboard.NewDashboardLinkBuilder(title).Type(dashboard.DashboardLinkTypeLink).Url(url)
}

// hidden hides a column that only feeds data links.
func hidden() []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{{Id: "custom.hidden", Value: true}}
}

func unit(u string) []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{{Id: "unit", Value: u}}
}

func colorText() []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{{Id: "custom.cellOptions", Value: map[string]any{"type": "color-text"}}}
}

func dataLinks(links ...cog.Builder[dashboard.DashboardLink]) []dashboard.DynamicConfigValue {
	var out []map[string]any
	for _, l := range links {
		dl, err := l.Build()
		if err != nil {
			panic(err) // static input
		}
		out = append(out, map[string]any{"title": dl.Title, "url": *dl.Url})
	}
	return []dashboard.DynamicConfigValue{{Id: "links", Value: out}}
}

func mappings() []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{{Id: "mappings", Value: stateMappings()}}
}

// newTable is a table panel with pagination and an explicit (empty) footer
// reducer: the SDK's default leaves it null, which Grafana's schema rejects.
func newTable() *table.PanelBuilder {
	return table.NewPanelBuilder().
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{}).EnablePagination(true)).
		CellHeight(common.TableCellHeightSm)
}
