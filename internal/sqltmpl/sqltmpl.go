// Package sqltmpl is the one way statustrace keeps SQL: embedded .sql files
// parsed as text/template sources with one set of functions, so queries,
// views, dashboards and migrations spell state rules (package event) and
// table names (package internal/schema) the same way. Each caller adds only
// what is its own (the migrations' cluster-aware table names, the query
// package's ORDER BY variants).
//
// Templates never receive user input: values reach ClickHouse as query
// parameters ({name:Type}) or, in dashboards, as Grafana variables inside
// fixed escaping functions.
package sqltmpl

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"text/template"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
)

// Funcs are the functions every statustrace .sql template can call: the
// state fragments of event.TemplateFuncs and
//
//	{{cutoff}}                 the oldest visible time (schema.RetentionCutoffExpr)
//	{{durationKind "run"}}     'run': a kind of the duration digests (schema.DurationKinds)
//	{{durationCode "run"}}     2: a step kind's code in a duration key (schema.DurationCode)
//	{{durationKey "kind" "ns" "terminal" "endNS"}}
//	                           a transition's duration key (schema.DurationKeyExpr)
//	{{stepCode "from" "to"}}   the step code a transition ends, over state columns (schema.StepCodeExpr)
//	{{durationParts "key"}}    the (kind, bin) pairs a duration key carries (schema.DurationPartsExpr)
//	{{digestBin "expr"}}       the digest bin of a duration in ns (schema.DigestBinExpr)
//	{{digestValue "expr"}}     the duration in ns a bin stands for (schema.DigestValueExpr)
func Funcs() template.FuncMap {
	f := event.TemplateFuncs()
	f["cutoff"] = func() string { return schema.RetentionCutoffExpr }
	f["durationKind"] = func(kind string) (string, error) {
		if !slices.Contains(schema.DurationKinds, kind) {
			return "", fmt.Errorf("durationKind: unknown kind %q (schema.DurationKinds)", kind)
		}
		return "'" + kind + "'", nil
	}
	f["durationCode"] = func(kind string) (int, error) {
		c, ok := schema.DurationCode(kind)
		if !ok {
			return 0, fmt.Errorf("durationCode: %q is not a step kind (schema.DurationCode)", kind)
		}
		return c, nil
	}
	// The digest expressions take SQL expressions of our own templates
	// ("k.2", an array element), never user input.
	f["durationKey"] = schema.DurationKeyExpr
	f["stepCode"] = schema.StepCodeExpr
	f["durationParts"] = schema.DurationPartsExpr
	f["digestBin"] = schema.DigestBinExpr
	f["digestValue"] = schema.DigestValueExpr
	return f
}

// Tables are the unqualified table names templates read, as data fields
// ({{.Transitions}}, ...), from internal/schema.
type Tables struct {
	Transitions, Events, Settings string
	Stats                         string // per-minute counts and duration digests
}

// DefaultTables names the tables as internal/schema does.
func DefaultTables() Tables {
	return Tables{Transitions: schema.Transitions, Events: schema.Events, Stats: schema.Stats, Settings: schema.Settings}
}

// shared are the fragments every template set includes (sql/_*.sql here):
// SQL that more than one package runs, such as reading the events table.
//
//go:embed sql/_*.sql
var shared embed.FS

// Parse parses every file of fsys matching pattern into one template set,
// each named by its base name ("event_list.sql"), so files include each
// other with {{template "_scope.sql" .}}. extra functions are added to (and
// may override) Funcs. A missing data field is an error, not "<no value>".
func Parse(fsys fs.FS, pattern string, extra template.FuncMap) (*template.Template, error) {
	funcs := Funcs()
	for k, v := range extra {
		funcs[k] = v
	}
	root := template.New("").Option("missingkey=error").Funcs(funcs)
	if err := parseFiles(root, shared, "sql/_*.sql"); err != nil {
		return nil, err
	}
	if err := parseFiles(root, fsys, pattern); err != nil {
		return nil, err
	}
	return root, nil
}

func parseFiles(root *template.Template, fsys fs.FS, pattern string) error {
	files, err := fs.Glob(fsys, pattern)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no SQL files match %s", pattern)
	}
	for _, f := range files {
		src, err := fs.ReadFile(fsys, f)
		if err != nil {
			return err
		}
		name := path.Base(f)
		if root.Lookup(name) != nil {
			return fmt.Errorf("%s: a shared fragment (internal/sqltmpl) has that name", f)
		}
		if _, err := root.New(name).Parse(string(src)); err != nil {
			return fmt.Errorf("parse %s: %w", f, err)
		}
	}
	return nil
}

// Execute renders the file name (without ".sql") with data, trimmed.
func Execute(t *template.Template, name string, data any) (string, error) {
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name+".sql", data); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return strings.TrimSpace(b.String()), nil
}
