package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/plugin"
	"github.com/statustrace/statustrace/plugin/spans"
	"github.com/statustrace/statustrace/testkit/otlptest"
)

// pluginPath is the real plugin binary, built once for the package's tests.
var pluginPath string

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChild()
	}
	dir, err := os.MkdirTemp("", "statustrace-plugin-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pluginPath = filepath.Join(dir, "statustrace-plugin")
	build := exec.Command("go", "build", "-o", pluginPath, "github.com/statustrace/statustrace/cmd/statustrace-plugin")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build plugin:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// pluginConfig exports to r, with the plugin's spool in a folder of the
// test's own (the default, in the working directory, would be shared by
// every test of the package).
func pluginConfig(tb testing.TB, r *otlptest.Receiver) map[string]string {
	return map[string]string{
		plugin.KeyEndpoint:    r.GRPCAddr,
		plugin.KeyInsecure:    "true",
		plugin.KeyServiceName: "scheduler-test",
		plugin.KeySpoolDir:    tb.TempDir(),
	}
}

func startReporter(tb testing.TB, cfg Config) *Reporter {
	tb.Helper()
	cfg.PluginPath = pluginPath
	rep, err := Start(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rep.Close(ctx)
	})
	return rep
}

func closeReporter(tb testing.TB, rep *Reporter) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := rep.Close(ctx); err != nil {
		tb.Fatalf("close: %v (stats %+v)", err, rep.Stats())
	}
}

const base = int64(1_760_000_000_000_000_000)

// lifecycle: QUEUED→RUNNING→RETRYING→RUNNING→FINISHED, 6 spans.
func lifecycle(ns, fn, id string, at int64) []event.Transition {
	k := event.Keys{Tenant: "acct-" + fn, Namespace: ns, Function: fn, Qualifier: "LATEST", RequestID: id}
	mk := func(seq uint64, attempt uint32, from, to event.State, d int64) event.Transition {
		return event.Transition{Keys: k, Seq: seq, Attempt: attempt, From: from, To: to, TimeUnixNano: at + d,
			InvokeType: "async", Node: "node-1"}
	}
	ts := []event.Transition{
		mk(1, 0, event.StateNone, event.StateQueued, 0),
		mk(2, 1, event.StateQueued, event.StateRunning, 1000),
		mk(3, 1, event.StateRunning, event.StateRetrying, 2000),
		mk(4, 2, event.StateRetrying, event.StateRunning, 3000),
		mk(5, 2, event.StateRunning, event.StateFinished, 4000),
	}
	ts[2].ErrorCode = "Crash"
	return ts
}

// spansOfEvent lists the IDs (trace/span) an event's lifecycle must produce.
func spansOfEvent(id string) []string {
	tid := spans.TraceID(id).String()
	out := []string{tid + "/" + spans.EventSpanID(id).String()}
	for seq := uint64(1); seq <= 5; seq++ {
		out = append(out, tid+"/"+spans.TransitionSpanID(id, seq).String())
	}
	return out
}
