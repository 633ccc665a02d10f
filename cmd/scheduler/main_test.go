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

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
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

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rx := &countingReceiver{}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, rx)
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()

	api, demo := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`
node: bin-node
listen: %s
demo_listen: %s
database: {driver: sqlite, dsn: %s}
status_trace:
  plugin_path: %s
  plugin_config: {otlp.endpoint: %q, otlp.insecure: "true"}
  flush_interval: 20ms
functions:
  - {name: hello, namespace: demo, endpoint: "http://%s/succeed"}
`, api, demo, filepath.Join(dir, "s.db"), plugin, l.Addr().String(), demo)
	cfgPath := filepath.Join(dir, "scheduler.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))

	cmd := exec.Command(bin, "-config", cfgPath, "-log-level", "warn")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()

	base := "http://" + api
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "scheduler never came up: %s", &stderr)

	resp, err := http.Post(base+"/v1/namespaces/demo/functions/hello/invocations", "application/json", strings.NewReader(`{}`))
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

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		assert.NoError(t, err, "exit status; stderr: %s", &stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("scheduler did not exit on SIGTERM: %s", &stderr)
	}
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
	collector := freeAddr(t) // nothing listens there yet
	api, demo := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "scheduler.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
node: spool-node
listen: %s
demo_listen: %s
database: {driver: sqlite, dsn: %s}
status_trace:
  plugin_path: %s
  plugin_config: {otlp.endpoint: %q, otlp.insecure: "true"}
  flush_interval: 20ms
functions:
  - {name: hello, namespace: demo, endpoint: "http://%s/succeed"}
`, api, demo, filepath.Join(dir, "s.db"), plugin, collector, demo)), 0o600))
	base := "http://" + api
	start := func() (*exec.Cmd, chan error, *strings.Builder) {
		cmd := exec.Command(bin, "-config", cfgPath, "-log-level", "warn")
		var stderr strings.Builder
		cmd.Stderr = &stderr
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
		}, 30*time.Second, 20*time.Millisecond, "scheduler never came up: %s", &stderr)
		return cmd, exited, &stderr
	}
	stop := func(cmd *exec.Cmd, exited chan error, stderr *strings.Builder) time.Duration {
		began := time.Now()
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		select {
		case err := <-exited:
			require.NoError(t, err, "exit status; stderr: %s", stderr)
		case <-time.After(60 * time.Second):
			t.Fatalf("scheduler did not exit on SIGTERM: %s", stderr)
		}
		return time.Since(began)
	}

	cmd, exited, stderr := start()
	const events = 20
	for range events {
		resp, err := http.Post(base+"/v1/namespaces/demo/functions/hello/invocations", "application/json", strings.NewReader(`{}`))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	// QUEUED, RUNNING, FINISHED per event, all spooled (metrics come with the acks).
	require.Eventually(t, func() bool {
		return metric(t, base, "statustrace_reporter_spool_spooled_total", "") >= events*3
	}, 30*time.Second, 50*time.Millisecond, "not spooled: %s", stderr)
	assert.Zero(t, metric(t, base, "statustrace_reporter_spool_exported_total", ""))
	assert.Positive(t, metric(t, base, "statustrace_reporter_spool_bytes", ""))
	assert.Positive(t, metric(t, base, "statustrace_reporter_spool_export_failures_total", ""))
	assert.Zero(t, metric(t, base, "statustrace_reporter_spool_dropped_total", `reason="spool_full"`))
	took := stop(cmd, exited, stderr)
	assert.NotContains(t, stderr.String(), "not acknowledged", "a graceful stop with the collector down lost transitions")
	t.Logf("graceful stop with the collector down took %v", took)
	entries, err := os.ReadDir(filepath.Join(dir, "statustrace-spool"))
	require.NoError(t, err, "no spool next to the database")
	require.NotEmpty(t, entries)

	// The collector is back; the next start sends what the spool kept.
	l, err := net.Listen("tcp", collector)
	require.NoError(t, err)
	rx := &countingReceiver{}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, rx)
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	cmd, exited, stderr = start()
	// Three transition spans and the root span per event.
	require.Eventually(t, func() bool { n, _ := rx.distinct(); return n >= events*4 }, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		return metric(t, base, "statustrace_reporter_spool_replayed_total", "") == events*3
	}, 10*time.Second, 50*time.Millisecond)
	stop(cmd, exited, stderr)
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
