package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/scheduler/config"
	"github.com/statustrace/statustrace/testkit/chtest"
	"github.com/statustrace/statustrace/testkit/stackbin"
)

// built are the binaries the end-to-end tests run, built once.
var built stackbin.Set

func TestMain(m *testing.M) {
	code := m.Run()
	built.Remove()
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
	root, bins := built.Get(tb)
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

// invokeShop invokes shop/<fn> once per request ID "<fn>-<n>" and waits
// until the wait-* events run (they run until terminated).
func invokeShop(t *testing.T, ctx context.Context, sc *stack.SchedulerClient, ids ...string) {
	t.Helper()
	for _, id := range ids {
		fn := strings.SplitN(id, "-", 2)[0]
		code, _, err := sc.Invoke(ctx, stack.Invocation{Namespace: "shop", Function: fn, RequestID: id, Payload: []byte(`{}`)})
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, code, id)
	}
	for _, id := range ids {
		if strings.HasPrefix(id, "wait-") {
			require.NoError(t, sc.WaitState(ctx, id, event.StateRunning.String()))
		}
	}
}
