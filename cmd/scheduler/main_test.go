package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/statustrace/statustrace/internal/freeport"
)

type countingReceiver struct {
	ptraceotlp.UnimplementedGRPCServer
	spans atomic.Int64

	mu  sync.Mutex
	ids map[string]int // span ID → times received
}

func (r *countingReceiver) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	r.spans.Add(int64(req.Traces().SpanCount()))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]int{}
	}
	rss := req.Traces().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sp := sss.At(j).Spans()
			for k := 0; k < sp.Len(); k++ {
				r.ids[sp.At(k).SpanID().String()]++
			}
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}

// distinct is the number of distinct span IDs received, and how many
// arrived more than once.
func (r *countingReceiver) distinct() (n, dup int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.ids {
		if c > 1 {
			dup++
		}
	}
	return len(r.ids), dup
}

// serveOTLP serves an OTLP/gRPC receiver on addr until the test ends.
func serveOTLP(t *testing.T, addr string) (*countingReceiver, string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	rx := &countingReceiver{}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, rx)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return rx, l.Addr().String()
}

func build(t *testing.T, pkg, out string) {
	t.Helper()
	b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput()
	require.NoError(t, err, string(b))
}

// The binary as an operator runs it: config file, plugin, demo functions,
// an invocation through the API, metrics, and a clean exit on SIGTERM that
// leaves no plugin process behind.
func TestBinary(t *testing.T) {
	dir := t.TempDir()
	bin, plugin := filepath.Join(dir, "scheduler"), filepath.Join(dir, "statustrace-plugin")
	build(t, "github.com/statustrace/statustrace/cmd/scheduler", bin)
	build(t, "github.com/statustrace/statustrace/cmd/statustrace-plugin", plugin)

	rx, addr := serveOTLP(t, "127.0.0.1:0")
	cfgPath, base := writeConfig(t, dir, plugin, addr)
	sc := startScheduler(t, bin, cfgPath, base)

	resp, err := http.Post(base+"/v1/namespaces/demo/functions/hello/invocations", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the API needs a token")
	resp, err = invokeHello(base)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	rid := resp.Header.Get("X-Request-Id")
	require.NotEmpty(t, rid)

	// QUEUED, RUNNING, FINISHED and the event's root span.
	require.Eventually(t, func() bool { return rx.spans.Load() >= 4 }, 30*time.Second, 10*time.Millisecond)
	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	var metrics strings.Builder
	_, _ = fmt.Fprint(&metrics, readAll(resp))
	assert.Contains(t, metrics.String(), "statustrace_scheduler_invocations_accepted_total")
	// The names deploy/prometheus/alerts.yaml's backlog alert uses.
	assert.Contains(t, metrics.String(), "statustrace_scheduler_backlog_oldest_age_seconds{")
	assert.Contains(t, metrics.String(), "statustrace_scheduler_backlog_waiting{")

	sc.stop(t)
	require.Eventually(t, func() bool { return !processRunning(plugin) }, 10*time.Second, 20*time.Millisecond, "the plugin process outlived the scheduler")
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// processRunning reports whether a process runs the given executable.
func processRunning(exe string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, p := range procs {
		if target, err := os.Readlink(p); err == nil && target == exe {
			return true
		}
	}
	return false
}

// writeConfig writes a scheduler config into dir: SQLite there, the plugin
// exporting to collector, the demo functions, one function demo/hello. It
// returns the config's path and the API's base URL.
func writeConfig(t *testing.T, dir, plugin, collector string) (string, string) {
	t.Helper()
	addrs := freeport.Addrs(t, 2)
	api, demo := addrs[0], addrs[1]
	cfg := fmt.Sprintf(`
node: bin-node
api_tokens: [%q]
listen: %s
demo_listen: %s
database: {driver: sqlite, dsn: %s}
status_trace:
  plugin_path: %s
  plugin_config: {otlp.endpoint: %q, otlp.insecure: "true"}
  flush_interval: 20ms
functions:
  - {name: hello, namespace: demo, endpoint: "http://%s/succeed"}
`, testToken+"=default", api, demo, filepath.Join(dir, "s.db"), plugin, collector, demo)
	cfgPath := filepath.Join(dir, "scheduler.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	return cfgPath, "http://" + api
}

type schedulerProc struct {
	cmd    *exec.Cmd
	exited chan error
	stderr *strings.Builder
}

// startScheduler runs the binary with the config and waits until its API
// at base answers; it is killed at the end of the test if still running.
func startScheduler(t *testing.T, bin, cfgPath, base string) schedulerProc {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfgPath, "-log-level", "warn")
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "scheduler never came up: %s", stderr)
	return schedulerProc{cmd, exited, stderr}
}

// stop sends SIGTERM and waits for a clean exit; it returns how long that took.
func (sc schedulerProc) stop(t *testing.T) time.Duration {
	t.Helper()
	began := time.Now()
	require.NoError(t, sc.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-sc.exited:
		require.NoError(t, err, "exit status; stderr: %s", sc.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("scheduler did not exit on SIGTERM: %s", sc.stderr)
	}
	return time.Since(began)
}

// metric returns the value of the first sample of name in the scheduler's
// /metrics whose labels contain label, -1 if there is none.
func metric(t *testing.T, base, name, label string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	for _, l := range strings.Split(readAll(resp), "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") || !strings.Contains(l, label) {
			continue
		}
		var v float64
		_, err := fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v)
		require.NoError(t, err, l)
		return v
	}
	return -1
}

// Issue 12: a graceful stop of the scheduler binary while the collector is
// down loses nothing. What the plugin acknowledged waits in its spool (by
// default next to the SQLite database) and the next start sends it, once
// per span; /metrics says what was spooled and replayed.
func TestGracefulStopWhileCollectorDownLosesNothing(t *testing.T) {
	dir := t.TempDir()
	bin, plugin := filepath.Join(dir, "scheduler"), filepath.Join(dir, "statustrace-plugin")
	build(t, "github.com/statustrace/statustrace/cmd/scheduler", bin)
	build(t, "github.com/statustrace/statustrace/cmd/statustrace-plugin", plugin)
	collector := freeport.Addr(t) // nothing listens there yet
	cfgPath, base := writeConfig(t, dir, plugin, collector)
	sc := startScheduler(t, bin, cfgPath, base)
	const events = 20
	for range events {
		resp, err := invokeHello(base)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	// QUEUED, RUNNING, FINISHED per event, all spooled (metrics come with the acks).
	require.Eventually(t, func() bool {
		return metric(t, base, "statustrace_reporter_spool_spooled_total", "") >= events*3
	}, 30*time.Second, 50*time.Millisecond, "not spooled: %s", sc.stderr)
	assert.Zero(t, metric(t, base, "statustrace_reporter_spool_exported_total", ""))
	assert.Positive(t, metric(t, base, "statustrace_reporter_spool_bytes", ""))
	assert.Positive(t, metric(t, base, "statustrace_reporter_spool_export_failures_total", ""))
	assert.Zero(t, metric(t, base, "statustrace_reporter_spool_dropped_total", `reason="spool_full"`))
	took := sc.stop(t)
	assert.NotContains(t, sc.stderr.String(), "not acknowledged", "a graceful stop with the collector down lost transitions")
	t.Logf("graceful stop with the collector down took %v", took)
	entries, err := os.ReadDir(filepath.Join(dir, "statustrace-spool"))
	require.NoError(t, err, "no spool next to the database")
	require.NotEmpty(t, entries)

	// The collector is back; the next start sends what the spool kept.
	rx, _ := serveOTLP(t, collector)
	sc = startScheduler(t, bin, cfgPath, base)
	// Three transition spans and the root span per event.
	require.Eventually(t, func() bool { n, _ := rx.distinct(); return n >= events*4 }, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		return metric(t, base, "statustrace_reporter_spool_replayed_total", "") == events*3
	}, 10*time.Second, 50*time.Millisecond)
	sc.stop(t)
	n, dup := rx.distinct()
	assert.Equal(t, events*4, n)
	assert.Zero(t, dup, "spans sent twice")
	entries, err = os.ReadDir(filepath.Join(dir, "statustrace-spool"))
	require.NoError(t, err)
	assert.Empty(t, entries, "the spool keeps nothing once everything was sent")
}

func TestBadConfigFailsClearly(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("functions: [{name: f, endpoint: 'ftp://x'}]\n"), 0o600))
	err := run(cfgPath, nil, 0, time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "functions[0].endpoint")
}

// testToken is the API token the test configs grant to tenant "default".
const testToken = "bin-test-token-0123456789"

// invokeHello invokes demo/hello with the test token.
func invokeHello(base string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/namespaces/demo/functions/hello/invocations", strings.NewReader(`{}`))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	return http.DefaultClient.Do(req)
}
