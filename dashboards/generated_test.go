package dashboards_test

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/statustrace/statustrace/dashboards/internal/build"
)

var update = flag.Bool("update", false, "rewrite the dashboard JSON files from internal/build")

// TestGenerated keeps the JSON files equal to what internal/build produces.
func TestGenerated(t *testing.T) {
	files, err := build.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		want, err := build.Marshal(f.Dashboard)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if *update {
			if err := os.WriteFile(f.Name, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(f.Name)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from internal/build: run `go test ./dashboards -run TestGenerated -update`", f.Name)
		}
	}
}
