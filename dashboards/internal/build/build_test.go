package build

import (
	"io/fs"
	"strings"

	"encoding/json"
	evt "github.com/statustrace/statustrace/event"
	"testing"
)

func TestUnescapeHTML(t *testing.T) {
	in := []byte(`{"a":"x \u003e y \u0026\u0026 z \u003c w","b":"\\u0026 stays","c":"\\\u0026"}`)
	want := `{"a":"x > y && z < w","b":"\\u0026 stays","c":"\\&"}`
	got := unescapeHTML(in)
	if string(got) != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	var a, b map[string]string
	if err := json.Unmarshal(in, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &b); err != nil {
		t.Fatal(err)
	}
	for k := range a {
		if a[k] != b[k] {
			t.Errorf("%s: %q became %q", k, a[k], b[k])
		}
	}
}

// Every dashboard builds and every query validates.
func TestAllBuild(t *testing.T) {
	files, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("%d dashboards, want 3", len(files))
	}
}

// Every state of package event has a colour, so a new state cannot show up
// uncoloured in every state panel.
func TestStateColors(t *testing.T) {
	for _, s := range evt.States() {
		if stateColors[s] == "" {
			t.Errorf("state %s has no colour", s)
		}
	}
}

// Every panel's SQL file is rendered without template leftovers, and every
// state it names comes from package event (no file spells one).
func TestPanelSQLRenders(t *testing.T) {
	if len(panelSQL) == 0 {
		t.Fatal("no panel SQL")
	}
	for name, s := range panelSQL {
		if strings.Contains(s, "{{") || strings.Contains(s, "<no value>") {
			t.Errorf("%s: unrendered template:\n%s", name, s)
		}
	}
	src, err := fs.Glob(sqlFS, "sql/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range src {
		b, _ := fs.ReadFile(sqlFS, f)
		for _, s := range evt.States() {
			if strings.Contains(string(b), "'"+s.String()+"'") {
				t.Errorf("%s spells state %s: use the template functions", f, s)
			}
		}
	}
}
