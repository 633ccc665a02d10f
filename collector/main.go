// Command collector is the statustrace OpenTelemetry Collector distribution:
// the OTLP receiver, the memory limiter, the statustrace exporter (status
// tables), the contrib ClickHouse exporter (otel_traces), the debug
// exporter, and the file_storage and health_check extensions.
//
//	go build -o statustrace-collector ./collector
//	statustrace-collector validate --config collector/config.yaml
//	statustrace-collector --config collector/config.yaml
package main

import (
	"fmt"
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"

	"github.com/statustrace/statustrace/collector/components"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func settings() otelcol.CollectorSettings {
	return otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "statustrace-collector",
			Description: "statustrace OpenTelemetry Collector distribution",
			Version:     version,
		},
		Factories: components.Factories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
	}
}

func main() {
	if err := otelcol.NewCommand(settings()).Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "collector: %v\n", err)
		os.Exit(1)
	}
}
