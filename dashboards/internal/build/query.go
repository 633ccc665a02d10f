package build

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// PluginID is the grafana-clickhouse-datasource plugin's type id.
const PluginID = "grafana-clickhouse-datasource"

// DatasourceVar is the dashboard variable every panel and query variable
// takes its data source from.
const DatasourceVar = "${datasource}"

// Query types of the plugin (src/types/sql.ts QueryType).
const (
	QueryTypeTable      = "table"
	QueryTypeTimeSeries = "timeseries"
	QueryTypeTraces     = "traces"
)

// Result formats the plugin's backend reads (sqlutil.FormatQueryOption):
// time series frames in long form are pivoted to wide ones, trace frames
// go to Grafana's trace view.
const (
	FormatTimeSeries = 0
	FormatTable      = 1
	FormatTrace      = 3
)

// Query is a grafana-clickhouse-datasource query written in the SQL editor,
// as stored in dashboard JSON. The foundation SDK has no type for this
// third-party plugin; registering VariantConfig lets the SDK unmarshal panel
// targets into it (strictly: an unknown field is an error).
type Query struct {
	RefId         string                `json:"refId"`
	Hide          *bool                 `json:"hide,omitempty"`
	Datasource    *common.DataSourceRef `json:"datasource,omitempty"`
	EditorType    string                `json:"editorType"`
	QueryType     string                `json:"queryType"`
	Format        int                   `json:"format"`
	RawSql        string                `json:"rawSql"`
	PluginVersion string                `json:"pluginVersion,omitempty"`
}

// ImplementsDataqueryVariant marks Query as a panel target type.
func (Query) ImplementsDataqueryVariant() {}

// DataqueryType is the plugin id.
func (Query) DataqueryType() string { return PluginID }

// Equals compares two queries.
func (q Query) Equals(other variants.Dataquery) bool {
	o, ok := other.(Query)
	return ok && reflect.DeepEqual(q, o)
}

// Validate checks what the plugin needs to run the query as intended.
func (q Query) Validate() error {
	var errs []error
	if q.RefId == "" {
		errs = append(errs, errors.New("refId is empty"))
	}
	if q.EditorType != "sql" {
		errs = append(errs, fmt.Errorf("editorType %q: want sql", q.EditorType))
	}
	want := map[string]int{QueryTypeTable: FormatTable, QueryTypeTimeSeries: FormatTimeSeries, QueryTypeTraces: FormatTrace}
	if f, ok := want[q.QueryType]; !ok {
		errs = append(errs, fmt.Errorf("queryType %q: want table, timeSeries or traces", q.QueryType))
	} else if q.Format != f {
		errs = append(errs, fmt.Errorf("queryType %s with format %d: want format %d", q.QueryType, q.Format, f))
	}
	if q.RawSql == "" {
		errs = append(errs, errors.New("rawSql is empty"))
	}
	return errors.Join(errs...)
}

// VariantConfig registers Query with the SDK's runtime for PluginID.
func VariantConfig() variants.DataqueryConfig {
	return variants.DataqueryConfig{
		Identifier: PluginID,
		DataqueryUnmarshaler: func(raw []byte) (variants.Dataquery, error) {
			var q Query
			err := json.Unmarshal(raw, &q)
			return q, err
		},
		StrictDataqueryUnmarshaler: func(raw []byte) (variants.Dataquery, error) {
			var q Query
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&q); err != nil {
				return nil, fmt.Errorf("clickhouse query: %w", err)
			}
			return q, q.Validate()
		},
	}
}

// Datasource is the reference every panel and target uses.
func Datasource() common.DataSourceRef {
	t, u := PluginID, DatasourceVar
	return common.DataSourceRef{Type: &t, Uid: &u}
}

type queryBuilder struct{ q Query }

var _ cog.Builder[variants.Dataquery] = (*queryBuilder)(nil)

func (b *queryBuilder) Build() (variants.Dataquery, error) {
	if err := b.q.Validate(); err != nil {
		return nil, cog.MakeBuildErrors("clickhouse", err)
	}
	return b.q, nil
}

func sqlTarget(refID, queryType string, format int, sql string) *queryBuilder {
	ds := Datasource()
	return &queryBuilder{Query{RefId: refID, Datasource: &ds, EditorType: "sql", QueryType: queryType, Format: format, RawSql: sql}}
}

func tableQuery(sql string) *queryBuilder {
	return sqlTarget("A", QueryTypeTable, FormatTable, sql)
}

func seriesQuery(sql string) *queryBuilder {
	return sqlTarget("A", QueryTypeTimeSeries, FormatTimeSeries, sql)
}

func traceQuery(sql string) *queryBuilder {
	return sqlTarget("A", QueryTypeTraces, FormatTrace, sql)
}
