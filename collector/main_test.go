package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/otelcol"
)

// config.yaml passes the collector's own validation, as
// `collector validate --config collector/config.yaml` does.
func TestConfigValidates(t *testing.T) {
	t.Setenv("STATUSTRACE_QUEUE_DIR", t.TempDir())
	cmd := otelcol.NewCommand(settings())
	cmd.SetArgs([]string{"validate", "--config", "config.yaml"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	// And a broken one does not.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	raw, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(string(raw), "retention: ${env:STATUSTRACE_RETENTION:-72h}", "retention: 1500ms", -1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = otelcol.NewCommand(settings())
	cmd.SetArgs([]string{"validate", "--config", bad})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "retention") {
		t.Fatalf("want a retention error, got %v", err)
	}
}
