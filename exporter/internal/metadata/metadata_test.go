package metadata

import (
	"context"
	"os"
	"reflect"
	"slices"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.yaml.in/yaml/v3"
)

// spec is the part of ../../metadata.yaml this package implements by hand
// (mdatagen cannot be built against this collector release; see README).
type spec struct {
	Type   string `yaml:"type"`
	Status struct {
		Class     string              `yaml:"class"`
		Stability map[string][]string `yaml:"stability"`
	} `yaml:"status"`
	Telemetry struct {
		Metrics map[string]struct {
			Enabled     bool   `yaml:"enabled"`
			Description string `yaml:"description"`
			Unit        string `yaml:"unit"`
			Sum         *struct {
				ValueType string `yaml:"value_type"`
				Monotonic bool   `yaml:"monotonic"`
			} `yaml:"sum"`
		} `yaml:"metrics"`
	} `yaml:"telemetry"`
}

func loadSpec(t *testing.T) spec {
	t.Helper()
	b, err := os.ReadFile("../../metadata.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var s spec
	if err := yaml.Unmarshal(b, &s); err != nil {
		t.Fatalf("metadata.yaml: %v", err)
	}
	return s
}

// TestIdentityMatchesMetadataYAML: the component type and stability are the
// ones metadata.yaml declares.
func TestIdentityMatchesMetadataYAML(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	if got := Type.String(); got != s.Type {
		t.Errorf("Type = %q, metadata.yaml type = %q", got, s.Type)
	}
	if s.Status.Class != "exporter" {
		t.Errorf("metadata.yaml status.class = %q, want exporter", s.Status.Class)
	}
	var level string
	for lvl, signals := range s.Status.Stability {
		if slices.Contains(signals, "traces") {
			level = lvl
		}
		for _, sig := range signals {
			if sig != "traces" {
				t.Errorf("metadata.yaml declares signal %q at %s; this package supports traces only", sig, lvl)
			}
		}
	}
	want := map[string]component.StabilityLevel{
		"development": component.StabilityLevelDevelopment, "alpha": component.StabilityLevelAlpha,
		"beta": component.StabilityLevelBeta, "stable": component.StabilityLevelStable,
		"deprecated": component.StabilityLevelDeprecated, "unmaintained": component.StabilityLevelUnmaintained,
	}[level]
	if TracesStability != want || level == "" {
		t.Errorf("TracesStability = %v, metadata.yaml traces stability = %q", TracesStability, level)
	}
}

// TestTelemetryMatchesMetadataYAML creates the instruments, records once on
// each and compares what an SDK reader collects with metadata.yaml: every
// declared metric exists with its description, unit and type, and no other.
func TestTelemetryMatchesMetadataYAML(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	reader := sdkmetric.NewManualReader()
	set := componenttest.NewNopTelemetrySettings()
	set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tel, err := NewTelemetry(set)
	if err != nil {
		t.Fatal(err)
	}
	// Record once on every instrument field (found by reflection, so a new
	// field without a metadata.yaml entry is caught too).
	v := reflect.ValueOf(tel).Elem()
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(metric.Int64Counter)
		if !ok {
			t.Fatalf("Telemetry.%s is %s; extend this test for it", v.Type().Field(i).Name, v.Field(i).Type())
		}
		c.Add(context.Background(), 1)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			t.Errorf("instrumentation scope %q, want %q", sm.Scope.Name, ScopeName)
		}
		for _, m := range sm.Metrics {
			got[m.Name] = m
		}
	}
	for name, want := range s.Telemetry.Metrics {
		m, ok := got[name]
		if !ok {
			t.Errorf("%s: declared in metadata.yaml, not created", name)
			continue
		}
		delete(got, name)
		if !want.Enabled {
			t.Errorf("%s: disabled in metadata.yaml but created", name)
		}
		if m.Description != want.Description {
			t.Errorf("%s: description\n got  %q\n yaml %q", name, m.Description, want.Description)
		}
		if m.Unit != want.Unit {
			t.Errorf("%s: unit %q, yaml %q", name, m.Unit, want.Unit)
		}
		if want.Sum == nil {
			t.Errorf("%s: metadata.yaml declares no sum; only sums are implemented here", name)
			continue
		}
		sum, ok := m.Data.(metricdata.Sum[int64])
		if want.Sum.ValueType != "int" || !ok {
			t.Errorf("%s: data %T, yaml value_type %q", name, m.Data, want.Sum.ValueType)
			continue
		}
		if sum.IsMonotonic != want.Sum.Monotonic {
			t.Errorf("%s: monotonic %v, yaml %v", name, sum.IsMonotonic, want.Sum.Monotonic)
		}
	}
	for name := range got {
		t.Errorf("%s: created, not declared in metadata.yaml", name)
	}
}
