// Package stackbin builds the project's binaries (internal/stack.Build) once
// per test binary, for the test packages that run the whole pipeline as
// processes (testkit/e2e, testkit/chaos). The build happens on the first
// test that asks, not in TestMain, so a run that skips them (-short, -run)
// builds nothing; the Go build cache makes it quick after the first time.
package stackbin

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/statustrace/statustrace/internal/stack"
)

// Set is one build of every binary into a temporary folder. The zero value
// is ready; a test package keeps one and calls Remove from its TestMain.
type Set struct {
	once sync.Once
	root string
	dir  string
	bins stack.Binaries
	err  error
}

// Get builds on the first call and returns the module root and the
// binaries; a failed build fails every caller with the same error.
func (s *Set) Get(tb testing.TB) (string, stack.Binaries) {
	tb.Helper()
	s.once.Do(s.build)
	if s.err != nil {
		tb.Fatalf("build the binaries: %v", s.err)
	}
	return s.root, s.bins
}

func (s *Set) build() {
	if s.root, s.err = stack.ModuleRoot(); s.err != nil {
		return
	}
	if s.dir, s.err = os.MkdirTemp("", "statustrace-bin-"); s.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if s.bins, s.err = stack.Build(ctx, s.root, s.dir); s.err != nil {
		s.err = fmt.Errorf("into %s: %w", s.dir, s.err)
	}
}

// Remove deletes the built binaries, if any.
func (s *Set) Remove() {
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}
