package statustraceexporter

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/testdata"
	"go.yaml.in/yaml/v3"

	"github.com/statustrace/statustrace/exporter/internal/metadata"
	"github.com/statustrace/statustrace/exporter/internal/rows"
)

// The tests mdatagen generates for a component (generated_component_test.go),
// driven by metadata.yaml's tests block: mdatagen cannot be built for this
// collector release (see README), so they are kept here by hand.

type metadataYAML struct {
	Tests struct {
		Config map[string]any `yaml:"config"`
	} `yaml:"tests"`
	Telemetry struct {
		Metrics map[string]struct {
			Description string `yaml:"description"`
		} `yaml:"metrics"`
	} `yaml:"telemetry"`
}

func readMetadataYAML(t *testing.T) metadataYAML {
	t.Helper()
	b, err := os.ReadFile("metadata.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m metadataYAML
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("metadata.yaml: %v", err)
	}
	return m
}

func TestComponentFactoryType(t *testing.T) {
	t.Parallel()
	if got := NewFactory().Type(); got != metadata.Type {
		t.Errorf("factory type %s, metadata.Type %s", got, metadata.Type)
	}
}

func TestComponentConfigStruct(t *testing.T) {
	t.Parallel()
	if err := componenttest.CheckConfigStruct(NewFactory().CreateDefaultConfig()); err != nil {
		t.Fatal(err)
	}
}

// TestComponentLifecycle creates the exporter from the factory with the
// default config plus metadata.yaml's tests.config, then shuts it down
// unstarted, and starts, feeds and shuts down another. No ClickHouse is
// needed: start does not dial and the schema is created in the background.
func TestComponentLifecycle(t *testing.T) {
	t.Parallel()
	f := NewFactory()
	cfg := f.CreateDefaultConfig()
	tc := readMetadataYAML(t).Tests.Config
	if len(tc) == 0 {
		t.Fatal("metadata.yaml has no tests.config")
	}
	if err := confmap.NewFromStringMap(tc).Unmarshal(&cfg); err != nil {
		t.Fatalf("tests.config: %v", err)
	}
	if err := confmap.Validate(cfg); err != nil {
		t.Fatalf("tests.config does not validate: %v", err)
	}
	ctx := context.Background()
	set := exportertest.NewNopSettings(metadata.Type)

	t.Run("shutdown", func(t *testing.T) {
		c, err := f.CreateTraces(ctx, set, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown before start: %v", err)
		}
	})
	t.Run("lifecycle", func(t *testing.T) {
		c, err := f.CreateTraces(ctx, set, cfg)
		if err != nil {
			t.Fatal(err)
		}
		host := componenttest.NewNopHost()
		if err := c.Start(ctx, host); err != nil {
			t.Fatalf("start: %v", err)
		}
		// Generic spans (not status spans): accepted, ignored.
		if err := c.ConsumeTraces(ctx, testdata.GenerateTraces(2)); err != nil {
			t.Errorf("consume: %v", err)
		}
		if err := c.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	})
}

// The drop reasons metadata.yaml documents are the ones the exporter uses.
func TestMetadataListsEveryDropReason(t *testing.T) {
	t.Parallel()
	desc := readMetadataYAML(t).Telemetry.Metrics["statustrace_exporter_spans_dropped"].Description
	m := regexp.MustCompile(`\(([a-z_, ]+)\)`).FindStringSubmatch(desc)
	if m == nil {
		t.Fatalf("spans_dropped description lists no reasons: %q", desc)
	}
	documented := strings.Split(m[1], ", ")
	var used []string
	for _, r := range rows.DropReasons() {
		used = append(used, r.String())
	}
	if !slices.Equal(documented, used) {
		t.Errorf("metadata.yaml lists reasons %v, rows.DropReasons() is %v", documented, used)
	}
}
