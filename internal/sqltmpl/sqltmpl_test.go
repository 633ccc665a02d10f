package sqltmpl

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
)

func TestParseAndExecute(t *testing.T) {
	fsys := fstest.MapFS{
		"sql/_frag.sql": {Data: []byte(`{{- /* doc */ -}}to_state = {{state "finished"}}`)},
		"sql/q.sql":     {Data: []byte("SELECT {{template \"_event_current.sql\" .}}\nFROM {{.Events}}\nWHERE {{template \"_frag.sql\" .}} AND time >= {{cutoff}} AND {{isTerminal \"to_state\"}}\n")},
	}
	tm, err := Parse(fsys, "sql/*.sql", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Execute(tm, "q", DefaultTables())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		event.SQLStateOfKey("max(state_key)") + " AS e_state", // the shared fragment
		"FROM " + schema.Events,
		"to_state = " + event.SQLLiteral(event.StateFinished.String()),
		schema.RetentionCutoffExpr,
		event.SQLIsTerminal("to_state"),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered SQL lacks %q:\n%s", want, got)
		}
	}
	if strings.HasSuffix(got, "\n") {
		t.Error("Execute does not trim")
	}
}

func TestParseErrors(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no files":         {},
		"bad template":     {"sql/a.sql": {Data: []byte("{{state")}},
		"shadows shared":   {"sql/_event_current.sql": {Data: []byte("x")}},
		"unknown function": {"sql/a.sql": {Data: []byte("{{nosuch}}")}},
	} {
		if _, err := Parse(fsys, "sql/*.sql", nil); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	tm, err := Parse(fstest.MapFS{"sql/a.sql": {Data: []byte(`{{.Nope}} {{state "done"}}`)}}, "sql/*.sql", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Execute(tm, "a", DefaultTables()); err == nil {
		t.Error("a missing field and an unknown state rendered")
	}
}

// The duration digests' functions come from internal/schema; a kind that
// schema does not know fails the render instead of matching nothing.
func TestDigestFuncs(t *testing.T) {
	fsys := fstest.MapFS{
		"sql/d.sql":   {Data: []byte(`SELECT {{digestValue "b"}} FROM {{.Stats}} WHERE kind = {{durationKind "run"}} AND b = {{digestBin "x"}} AND c = {{durationCode "run"}}`)},
		"sql/bad.sql": {Data: []byte(`{{durationKind "runtime"}}`)},
		"sql/e2e.sql": {Data: []byte(`{{durationCode "end_to_end"}}`)},
	}
	tm, err := Parse(fsys, "sql/*.sql", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Execute(tm, "d", DefaultTables())
	if err != nil {
		t.Fatal(err)
	}
	code, _ := schema.DurationCode(schema.DurationRun)
	want := "SELECT " + schema.DigestValueExpr("b") + " FROM " + schema.Stats +
		" WHERE kind = '" + schema.DurationRun + "' AND b = " + schema.DigestBinExpr("x") + fmt.Sprintf(" AND c = %d", code)
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if _, err := Execute(tm, "bad", DefaultTables()); err == nil {
		t.Error("an unknown duration kind rendered")
	}
	if _, err := Execute(tm, "e2e", DefaultTables()); err == nil {
		t.Error("end_to_end rendered as a step code")
	}
}
