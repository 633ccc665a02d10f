package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository root (tests run in deploy/).
const root = ".."

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(read(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// interpolate expands compose-style ${VAR:-default} and ${VAR} with env,
// falling back to the default.
func interpolate(s string, env map[string]string) string {
	return composeVarRE.ReplaceAllStringFunc(s, func(m string) string {
		sm := composeVarRE.FindStringSubmatch(m)
		if v, ok := env[sm[1]]; ok && v != "" {
			return v
		}
		return sm[3]
	})
}

var composeVarRE = regexp.MustCompile(`\$\{(\w+)(:-([^}]*))?\}`)

// regexpEnvRE finds Grafana provisioning's $VAR references.
var regexpEnvRE = regexp.MustCompile(`\$([A-Z][A-Z0-9_]+)\b`)

// pinned reports whether an image reference names a fixed version.
func pinned(image string) bool {
	name, tag, ok := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
	return ok && name != "" && tag != "" && tag != "latest" && !strings.Contains(image, "${")
}

func abs(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
