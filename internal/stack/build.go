package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Binaries are the executables the stack runs.
type Binaries struct {
	Collector string // statustrace-collector (go build ./collector)
	Scheduler string // scheduler (./cmd/scheduler)
	Plugin    string // statustrace-plugin (./cmd/statustrace-plugin)
	// Statustrace is the API server and CLI (./cmd/statustrace); empty
	// when this checkout does not have it yet.
	Statustrace string
}

// BinariesIn names the binaries in dir as `make build` lays them out. The
// required ones must exist; Statustrace is set only if it exists.
func BinariesIn(dir string) (Binaries, error) {
	b := Binaries{
		Collector: filepath.Join(dir, "statustrace-collector"),
		Scheduler: filepath.Join(dir, "scheduler"),
		Plugin:    filepath.Join(dir, "statustrace-plugin"),
	}
	var errs []error
	for _, p := range []string{b.Collector, b.Scheduler, b.Plugin} {
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Errorf("binary %s: %w", p, err))
		}
	}
	if p := filepath.Join(dir, "statustrace"); isFile(p) {
		b.Statustrace = p
	}
	return b, errors.Join(errs...)
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Build compiles every binary of the module into dir, as `make build` does:
//
//	go build -o dir/ ./cmd/... && go build -o dir/statustrace-collector ./collector
//
// root is the module root. Compiler output goes to the returned error.
func Build(ctx context.Context, root, dir string) (Binaries, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Binaries{}, fmt.Errorf("build dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("build dir: %w", err)
	}
	for _, args := range [][]string{
		{"build", "-o", abs + string(filepath.Separator), "./cmd/..."},
		{"build", "-o", filepath.Join(abs, "statustrace-collector"), "./collector"},
	} {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("go %v: %w\n%s", args, err, out)
		}
	}
	return BinariesIn(abs)
}

// ModuleRoot finds the directory of go.mod from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isFile(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in the working directory or above it")
		}
		dir = parent
	}
}
