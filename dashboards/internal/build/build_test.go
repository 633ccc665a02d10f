package build

import (
	"encoding/json"
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
