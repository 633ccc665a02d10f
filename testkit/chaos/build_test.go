package chaos

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/statustrace/statustrace/internal/stack"
)

var buildDir string

// build compiles every binary into a temporary folder (the Go build cache
// makes this quick after the first time).
func build(t *testing.T) (string, stack.Binaries) {
	t.Helper()
	root, err := stack.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if buildDir, err = os.MkdirTemp("", "statustrace-chaos-bin-"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bins, err := stack.Build(ctx, root, buildDir)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return root, bins
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}
