package deploy_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"

	"github.com/statustrace/statustrace/collector/components"
)

// validateCollectorConfig runs the collector's own validation (what
// `statustrace-collector validate --config` does) on a configuration file
// with the given environment.
func validateCollectorConfig(t *testing.T, path string, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "statustrace-collector", Version: "test"},
		Factories: components.Factories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				URIs:              []string{"file:" + abs(t, path)},
				ProviderFactories: []confmap.ProviderFactory{envprovider.NewFactory(), fileprovider.NewFactory(), yamlprovider.NewFactory()},
				DefaultScheme:     "env",
			},
		},
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := col.DryRun(context.Background()); err != nil {
		t.Errorf("%s does not validate: %v", path, err)
	}
}
