// Package components lists the statustrace collector distribution's
// components: what the OpenTelemetry Collector Builder generates from
// collector/builder-config.yaml (components_test.go keeps the two in step).
// It is a package of its own so that tests elsewhere (deploy) validate
// configurations against exactly these factories.
package components

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckv2extension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	"github.com/statustrace/statustrace/collector/clickhousetraces"
	"github.com/statustrace/statustrace/collector/timewindowprocessor"
	statustraceexporter "github.com/statustrace/statustrace/exporter"
)

// Factories returns the distribution's component factories.
func Factories() (otelcol.Factories, error) {
	var err error
	f := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}

	f.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](
		filestorage.NewFactory(),
		healthcheckv2extension.NewFactory(),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}
	f.ExtensionModules = modules(f.Extensions, map[string]string{
		"file_storage":  "github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage v0.165.1",
		"healthcheckv2": "github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckv2extension v0.165.1",
	})

	f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](
		otlpreceiver.NewFactory(),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}
	f.ReceiverModules = modules(f.Receivers, map[string]string{
		"otlp": "go.opentelemetry.io/collector/receiver/otlpreceiver v0.165.0",
	})

	f.Processors, err = otelcol.MakeFactoryMap[processor.Factory](
		memorylimiterprocessor.NewFactory(),
		timewindowprocessor.NewFactory(),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}
	f.ProcessorModules = modules(f.Processors, map[string]string{
		"memory_limiter": "go.opentelemetry.io/collector/processor/memorylimiterprocessor v0.165.0",
		"timewindow":     "github.com/statustrace/statustrace/collector/timewindowprocessor (this module)",
	})

	f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](
		statustraceexporter.NewFactory(),
		clickhousetraces.NewFactory(),
		debugexporter.NewFactory(),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}
	f.ExporterModules = modules(f.Exporters, map[string]string{
		"statustrace": "github.com/statustrace/statustrace/exporter (this module)",
		"clickhouse":  "github.com/statustrace/statustrace/collector/clickhousetraces (this module; wraps contrib clickhouseexporter v0.165.1)",
		"debug":       "go.opentelemetry.io/collector/exporter/debugexporter v0.165.0",
	})
	return f, nil
}

// modules maps each factory type to the Go module it comes from (shown by
// `collector components`).
func modules[T any](factories map[component.Type]T, mods map[string]string) map[component.Type]string {
	out := make(map[component.Type]string, len(factories))
	for t := range factories {
		out[t] = mods[t.String()]
	}
	return out
}
