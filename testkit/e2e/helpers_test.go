package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/scheduler/config"
	"github.com/statustrace/statustrace/testkit/chtest"
)

var (
	buildOnce sync.Once
	buildBins stack.Binaries
	buildErr  error
	buildDir  string
)

// binaries builds every binary once per test binary run (the Go build cache
// makes this quick after the first time).
func binaries(tb testing.TB) (string, stack.Binaries) {
	tb.Helper()
	root, err := stack.ModuleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "statustrace-e2e-bin-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		buildBins, buildErr = stack.Build(ctx, root, buildDir)
	})
	if buildErr != nil {
		tb.Fatalf("build: %v", buildErr)
	}
	return root, buildBins
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// startStack runs the whole pipeline against a fresh database and stops it
// when the test ends (before chtest drops the database).
func startStack(tb testing.TB, sched config.Config) (*stack.Stack, *chtest.DB) {
	tb.Helper()
	return startStackWith(tb, sched, nil)
}

// startStackWith is startStack with extra `statustrace serve` arguments.
func startStackWith(tb testing.TB, sched config.Config, apiArgs []string) (*stack.Stack, *chtest.DB) {
	tb.Helper()
	root, bins := binaries(tb)
	db := chtest.New(tb)
	work := tb.TempDir()
	s, err := stack.Start(context.Background(), stack.Options{
		Root:      root,
		Bin:       bins,
		WorkDir:   work,
		DSN:       chtest.BaseDSN(tb),
		Database:  db.Name,
		Scheduler: sched,
		APIArgs:   apiArgs,
		Logf:      tb.Logf,
		// Another collector config, for experiments (default: the shipped
		// collector/config.yaml).
		CollectorConfig: os.Getenv("STATUSTRACE_COLLECTOR_CONFIG"),
	})
	if err != nil {
		tb.Fatalf("start the stack: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("stop the stack: %v", err)
		}
		for _, p := range s.Processes() {
			if p.GroupAlive() {
				tb.Errorf("%s (pid %d) left processes running", p.Name, p.PID())
			}
		}
		if tb.Failed() {
			for _, p := range s.Processes() {
				tb.Logf("last lines of %s:\n%s", filepath.Base(p.LogPath), stack.Tail(p.LogPath, 30))
			}
		}
	})
	return s, db
}

func ptr[T any](v T) *T { return &v }

func dur(d time.Duration) config.Duration { return config.Duration(d) }
