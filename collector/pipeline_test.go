package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/freeport"
	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/plugin/spans"
	"github.com/statustrace/statustrace/testkit/chtest"
	"github.com/statustrace/statustrace/testkit/faultproxy"
	"github.com/statustrace/statustrace/testkit/otlptest"
)

// These tests run the distribution itself (this package's settings: the
// real components) on the shipped config.yaml, against the real engine
// behind a fault proxy.

type running struct {
	otlp, health, metrics string
	col                   *otelcol.Collector
	logs                  *observer.ObservedLogs // what it logs at warn level and above
	done                  chan error
	stopOnce              sync.Once
}

type shippedOpts struct {
	endpoint, database, queueDir string
	edits                        map[string]string // config.yaml text replacements
}

// startShipped runs collector/config.yaml as a deployment would, with its
// environment variables pointing at fresh ports, the given ClickHouse and
// queue directory. It returns once the collector runs (not once it is
// ready: that is what some tests check).
func startShipped(t *testing.T, o shippedOpts) *running {
	t.Helper()
	raw, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "    logs:\n      level: info", "    logs:\n      level: warn", 1)
	for old, repl := range o.edits {
		if !strings.Contains(text, old) {
			t.Fatalf("config.yaml has no %q", old)
		}
		text = strings.ReplaceAll(text, old, repl)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ports, err := freeport.Ports(4)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{
		otlp:    fmt.Sprintf("127.0.0.1:%d", ports[0]),
		health:  fmt.Sprintf("127.0.0.1:%d", ports[2]),
		metrics: fmt.Sprintf("127.0.0.1:%d", ports[3]),
		done:    make(chan error, 1),
	}
	for k, v := range map[string]string{
		"CLICKHOUSE_ENDPOINT": o.endpoint, "CLICKHOUSE_USER": "default", "STATUSTRACE_DATABASE": o.database,
		"STATUSTRACE_QUEUE_DIR": o.queueDir, "OTLP_GRPC_ENDPOINT": r.otlp, "OTLP_HTTP_ENDPOINT": fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"HEALTH_ENDPOINT": r.health, "METRICS_HOST": "127.0.0.1", "METRICS_PORT": strconv.Itoa(ports[3]),
	} {
		t.Setenv(k, v)
	}
	set := settings()
	obs, logs := observer.New(zapcore.WarnLevel)
	r.logs = logs
	set.LoggingOptions = []zap.Option{zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, obs) })}
	set.DisableGracefulShutdown = true
	set.SkipSettingGRPCLogger = true
	set.ConfigProviderSettings.ResolverSettings = confmap.ResolverSettings{
		URIs:              []string{"file:" + path},
		ProviderFactories: []confmap.ProviderFactory{envprovider.NewFactory(), fileprovider.NewFactory()},
		DefaultScheme:     "env",
	}
	r.col, err = otelcol.NewCollector(set)
	if err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.col.Run(context.Background()) }()
	deadline := time.Now().Add(30 * time.Second)
	for r.col.GetState() != otelcol.StateRunning {
		select {
		case err := <-r.done:
			t.Fatalf("collector exited while starting: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("collector did not start within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	r.stopOnce.Do(func() {
		r.col.Shutdown()
		if err := <-r.done; err != nil {
			t.Errorf("collector run: %v", err)
		}
	})
}

// healthCode is the health check's HTTP status (0: no answer).
func (r *running) healthCode() int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + r.health + "/")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (r *running) waitHealth(t *testing.T, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for r.healthCode() != want {
		if time.Now().After(deadline) {
			t.Fatalf("health check answered %d for %s, want %d", r.healthCode(), within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metric sums the samples of a Prometheus metric whose labels contain
// every one of want (e.g. `reason="expired"`).
func (r *running) metric(t *testing.T, name string, want ...string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sum, _, err := stack.ScrapeMetric(ctx, "http://"+r.metrics+"/metrics", name, want...)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// export sends td as exactly one OTLP/gRPC request.
func export(t *testing.T, addr string, td ptrace.Traces) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return otlptest.Send(ctx, addr, td)
}

// addTransition appends one status transition span of function ns/fn.
func addTransition(ss ptrace.ScopeSpans, tenant, rid string, seq int64, to event.State, at time.Time) {
	otlptest.AddTransition(ss, otlptest.Transition{Tenant: tenant, Namespace: "ns", Function: "fn", RequestID: rid, TraceID: spans.TraceID(rid), Seq: uint64(seq), Attempt: 1, To: to, At: at})
}

func newPayload() (ptrace.Traces, ptrace.ScopeSpans) { return otlptest.StatusPayload("statustrace") }

func count(t *testing.T, db *chtest.DB, query string) uint64 {
	t.Helper()
	var n uint64
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := db.Conn.QueryRow(ctx, query).Scan(&n); err != nil {
		return 0 // a table the collector has not created yet holds nothing
	}
	return n
}

func waitCount(t *testing.T, db *chtest.DB, query string, want uint64, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		n := count(t, db, query)
		if n == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: %d after %s, want %d", query, n, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The collector starts and takes OTLP whatever ClickHouse does: refusing
// connections, then hanging. It is not ready meanwhile (health 500/503),
// and once ClickHouse answers both schemas are created, it turns ready and
// what it accepted is written.
func TestStartsWhateverClickHouseDoes(t *testing.T) {
	db := chtest.New(t)
	base := chtest.BaseDSN(t)
	scheme, _, _ := strings.Cut(base, "://") // the proxy carries either protocol
	px := faultproxy.New(t, hostOf(t, base))
	px.Set(faultproxy.Refuse)
	col := startShipped(t, shippedOpts{
		endpoint: scheme + "://" + px.Addr, database: db.Name, queueDir: t.TempDir(),
		// Per-attempt limits shorter than the hang, so that hanging
		// attempts are abandoned and retried (shipped: 2m and 10s).
		edits: map[string]string{"create_schema_timeout: 2m": "create_schema_timeout: 4s", "timeout: 10s": "timeout: 4s"},
	})
	if code := col.healthCode(); code == http.StatusOK || code == 0 {
		t.Fatalf("health check %d while ClickHouse refuses connections, want not ready", code)
	}
	td, ss := newPayload()
	now := time.Now()
	addTransition(ss, "acme", "while-down", 1, event.StateQueued, now.Add(-time.Second))
	addTransition(ss, "acme", "while-down", 2, event.StateFinished, now)
	if err := export(t, col.otlp, td); err != nil {
		t.Fatalf("OTLP refused while ClickHouse is down: %v", err)
	}
	time.Sleep(2 * time.Second)
	px.Set(faultproxy.Hang)
	time.Sleep(6 * time.Second) // attempts hang and are abandoned at 4s
	if code := col.healthCode(); code == http.StatusOK || code == 0 {
		t.Fatalf("health check %d while ClickHouse hangs, want not ready", code)
	}
	if err := export(t, col.otlp, td); err != nil { // a retry of the same request: idempotent
		t.Fatalf("OTLP refused while ClickHouse hangs: %v", err)
	}
	px.Set(faultproxy.Pass)
	col.waitHealth(t, http.StatusOK, 2*time.Minute)
	waitCount(t, db, "SELECT count() FROM "+db.Name+".transitions FINAL WHERE request_id = 'while-down'", 2, 2*time.Minute)
	waitCount(t, db, "SELECT count() FROM (SELECT DISTINCT SpanId FROM "+db.Name+".otel_traces WHERE SpanAttributes['"+event.AttrRequestID+"'] = 'while-down')", 2, 2*time.Minute)
}

// The poison request of issue 12 (valid transitions on 101 days, 4 to 104
// days ago, beside a valid event of another tenant) through both
// pipelines: the valid event is queryable at once, the poison is dropped
// and counted by both, nothing is retried, and a restart replays nothing.
func TestPoisonRequestThroughCollector(t *testing.T) {
	db := chtest.New(t)
	queue := t.TempDir()
	opts := shippedOpts{endpoint: chtest.BaseDSN(t), database: db.Name, queueDir: queue}
	col := startShipped(t, opts)
	col.waitHealth(t, http.StatusOK, 2*time.Minute)

	td, ss := newPayload()
	now := time.Now()
	otlptest.AddPoison(ss, "poisoner", "old", spans.TraceID("poison"), now)
	addTransition(ss, "innocent", "fresh", 1, event.StateQueued, now.Add(-2*time.Second))
	addTransition(ss, "innocent", "fresh", 2, event.StateRunning, now.Add(-time.Second))
	addTransition(ss, "innocent", "fresh", 3, event.StateFinished, now)
	if err := export(t, col.otlp, td); err != nil {
		t.Fatal(err)
	}
	took := waitCount(t, db, "SELECT count() FROM "+db.Name+".transitions FINAL WHERE tenant = 'innocent'", 3, 30*time.Second)
	t.Logf("the other tenant's event was queryable %s after the poison request was accepted", took)
	waitCount(t, db, "SELECT count() FROM "+db.Name+".otel_traces WHERE SpanAttributes['"+event.AttrTenant+"'] = 'innocent'", 3, time.Minute)
	if n := count(t, db, "SELECT count() FROM "+db.Name+".otel_traces WHERE SpanAttributes['"+event.AttrTenant+"'] = 'poisoner'"); n != 0 {
		t.Errorf("%d poison spans in otel_traces", n)
	}
	if n := count(t, db, "SELECT count() FROM "+db.Name+".transitions WHERE tenant = 'poisoner'"); n != 0 {
		t.Errorf("%d poison transitions stored", n)
	}
	if got := col.metric(t, "statustrace_exporter_spans_dropped", `reason="expired"`); got != otlptest.PoisonSpans {
		t.Errorf("statustrace exporter dropped %v as expired, want %d", got, otlptest.PoisonSpans)
	}
	if got := col.metric(t, "statustrace_timewindow_spans_dropped", `reason="expired"`); got != otlptest.PoisonSpans {
		t.Errorf("timewindow dropped %v as expired, want %d", got, otlptest.PoisonSpans)
	}
	// Nothing waits for a retry: both queues are empty.
	deadline := time.Now().Add(30 * time.Second)
	for col.metric(t, "otelcol_exporter_queue_size") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queues still hold %v batches", col.metric(t, "otelcol_exporter_queue_size"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if failed := col.metric(t, "otelcol_exporter_send_failed_spans"); failed != 0 {
		t.Errorf("%v spans failed to send", failed)
	}

	// A restart on the same persistent queue replays nothing.
	col.stop(t)
	col = startShipped(t, opts)
	col.waitHealth(t, http.StatusOK, 2*time.Minute)
	time.Sleep(2 * time.Second)
	if got := col.metric(t, "statustrace_exporter_spans_dropped"); got != 0 {
		t.Errorf("after a restart the exporter dropped %v spans again: the poison was replayed", got)
	}
	if got := col.metric(t, "otelcol_exporter_sent_spans"); got != 0 {
		t.Errorf("after a restart %v spans were sent again", got)
	}
}

// A span ClickHouse refuses on its own (here: a constraint on otel_traces)
// is bisected out by the wrapped contrib exporter; the rest of its batch is
// written and its queue keeps moving.
func TestRefusedSpanDoesNotBlockOtelTraces(t *testing.T) {
	db := chtest.New(t)
	col := startShipped(t, shippedOpts{endpoint: chtest.BaseDSN(t), database: db.Name, queueDir: t.TempDir()})
	col.waitHealth(t, http.StatusOK, 2*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := db.Conn.Exec(ctx, "ALTER TABLE "+db.Name+".otel_traces ADD CONSTRAINT no_poison CHECK SpanAttributes['"+event.AttrRequestID+"'] != 'poison'"); err != nil {
		t.Fatal(err)
	}
	td, ss := newPayload()
	now := time.Now()
	for i := range 20 {
		addTransition(ss, "acme", fmt.Sprintf("r-%02d", i), 1, event.StateQueued, now)
	}
	addTransition(ss, "acme", "poison", 1, event.StateQueued, now)
	if err := export(t, col.otlp, td); err != nil {
		t.Fatal(err)
	}
	waitCount(t, db, "SELECT count() FROM "+db.Name+".otel_traces", 20, time.Minute)
	waitCount(t, db, "SELECT count() FROM "+db.Name+".transitions", 21, time.Minute) // the status tables have no such constraint
	deadline := time.Now().Add(30 * time.Second)
	for col.metric(t, "statustrace_clickhouse_spans_rejected") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("rejected spans counted: %v, want 1", col.metric(t, "statustrace_clickhouse_spans_rejected"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The operator reads one warning for the dropped span, not an error
	// line per bisection step that says the batch was rejected.
	if n := col.logs.FilterMessage("dropped spans ClickHouse refused").Len(); n != 1 {
		t.Errorf("%d warnings about the dropped span, want 1", n)
	}
	if l := col.logs.FilterMessageSnippet("Rejecting data").All(); len(l) != 0 {
		t.Errorf("%d lines say data was rejected, first: %s %v", len(l), l[0].Message, l[0].ContextMap())
	}
}

func hostOf(t *testing.T, dsn string) string {
	t.Helper()
	_, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		t.Fatalf("DSN %q", dsn)
	}
	host, _, _ := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	return host
}
