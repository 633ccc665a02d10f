package components

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.yaml.in/yaml/v3"
)

// The distribution has exactly the components the design asks for.
func TestComponentsExactly(t *testing.T) {
	f, err := Factories()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for k := range f.Receivers {
		got["receivers"] = append(got["receivers"], k.String())
	}
	for k := range f.Processors {
		got["processors"] = append(got["processors"], k.String())
	}
	for k := range f.Exporters {
		got["exporters"] = append(got["exporters"], k.String())
	}
	for k := range f.Extensions {
		got["extensions"] = append(got["extensions"], k.String())
	}
	want := map[string][]string{
		"receivers":  {"otlp"},
		"processors": {"memory_limiter", "timewindow"},
		"exporters":  {"clickhouse", "debug", "statustrace"},
		"extensions": {"file_storage", "healthcheckv2"},
	}
	for kind, w := range want {
		g := got[kind]
		slices.Sort(g)
		if !slices.Equal(g, w) {
			t.Errorf("%s = %v, want %v", kind, g, w)
		}
	}
	if len(f.Connectors) != 0 {
		t.Errorf("unexpected connectors %v", f.Connectors)
	}
}

// builder-config.yaml names the same modules components.go registers.
func TestBuilderManifestMatchesComponents(t *testing.T) {
	raw, err := os.ReadFile("../builder-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var manifest map[string][]struct {
		Gomod  string `yaml:"gomod"`
		Import string `yaml:"import"`
	}
	var all map[string]any
	if err := yaml.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	delete(all, "dist")
	clean, _ := yaml.Marshal(all)
	if err := yaml.Unmarshal(clean, &manifest); err != nil {
		t.Fatal(err)
	}
	f, err := Factories()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]map[component.Type]string{
		"receivers":  f.ReceiverModules,
		"processors": f.ProcessorModules,
		"exporters":  f.ExporterModules,
		"extensions": f.ExtensionModules,
	}
	for kind, m := range registered {
		var have, want []string
		for _, v := range m {
			have = append(have, strings.Fields(v)[0])
		}
		for _, e := range manifest[kind] {
			mod := strings.Fields(e.Gomod)[0]
			if e.Import != "" {
				mod = e.Import
			}
			want = append(want, mod)
		}
		slices.Sort(have)
		slices.Sort(want)
		if !slices.Equal(have, want) {
			t.Errorf("%s: components.go has %v, builder-config.yaml %v", kind, have, want)
		}
	}
}
