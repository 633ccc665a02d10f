package build

import (
	"embed"
	"fmt"
	"text/template"

	"github.com/statustrace/statustrace/internal/sqltmpl"
)

// The SQL of the panels lives in sql/*.sql, one file per panel query or
// variable, rendered by internal/sqltmpl with the functions every
// statustrace .sql file uses: state rules from package event (the public
// status, the terminal set, state names), the retention cutoff and table
// names from internal/schema. Grafana macros ($__timeFilter, ...) and
// variables stay text in the files. Conventions, so that every panel is right
// whether or not ClickHouse has merged yet and never shows expired rows:
//
//   - Tables are unqualified: the data source's default database is the
//     statustrace database (deploy/grafana/provisioning sets it), which the
//     retention expression needs too.
//   - events is read grouped by its key with the -Merge/min/max readers
//     (internal/schema); filters on non-key columns go to HAVING.
//   - the per-minute stats are first merged per full key (one exact count
//     per key), then summed: summing exact per-key counts is exact and
//     cheap.
//   - transitions are deduplicated with LIMIT 1 BY its key.
//   - the duration digests come from the same rows: merged per full key
//     with maxMap (one duration key per transition hash, so duplicates
//     count once), the keys counted, split into kinds and bins, and summed
//     before a percentile is read from the bins (_duration_digest.sql).
//   - Every read applies the retention cutoff ({{cutoff}}).
//   - Variable values reach SQL only through
//     decodeURLComponent('${var:percentencode}'), which no value can break
//     out of, or for the fixed status list through ${status:singlequote}.
//     Every filter sits in $__conditionalAll, so All costs nothing.
//
//go:embed sql/*.sql
var sqlFS embed.FS

// panelSQL holds every file that does not start with "_", rendered once.
var panelSQL = mustRenderSQL()

func mustRenderSQL() map[string]string {
	t, err := sqltmpl.Parse(sqlFS, "sql/*.sql", template.FuncMap{"digest": digest})
	if err != nil {
		panic(fmt.Sprintf("dashboards: embedded SQL does not parse: %v", err))
	}
	out := map[string]string{}
	for _, tm := range t.Templates() {
		name := tm.Name()
		if name == "" || name[0] == '_' {
			continue
		}
		name = name[:len(name)-len(".sql")]
		s, err := sqltmpl.Execute(t, name, sqltmpl.DefaultTables())
		if err != nil {
			panic(fmt.Sprintf("dashboards: embedded SQL does not render: %v", err))
		}
		out[name] = s
	}
	return out
}

// sql returns the rendered query of sql/<name>.sql; a name without a file
// is a programming error caught by every test that builds the dashboards.
func sql(name string) string {
	s, ok := panelSQL[name]
	if !ok {
		panic("dashboards: no SQL file sql/" + name + ".sql")
	}
	return s
}
