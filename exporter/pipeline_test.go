package statustraceexporter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/exporter/migrate"
	"github.com/statustrace/statustrace/internal/freeport"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/testkit/chtest"
	"github.com/statustrace/statustrace/testkit/faultproxy"
)

// A real collector in this process: otelcol with the otlp receiver, the
// memory limiter, this exporter and file_storage, configured from YAML as a
// deployment would be.

type collectorOpts struct {
	otlpAddr   string
	endpoint   string // ClickHouse endpoint for the exporter
	database   string
	queueDir   string // file_storage directory
	extraLines string
}

const collectorYAML = `
extensions:
  file_storage/queue:
    directory: %[4]s
    timeout: 2s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
exporters:
  statustrace:
    endpoint: %[2]s
    database: %[3]s
    compression: %[5]s
    timeout: 60s
    retry_on_failure:
      enabled: true
      initial_interval: 100ms
      max_interval: 500ms
      max_elapsed_time: 0s
    sending_queue:
      enabled: true
      storage: file_storage/queue
      num_consumers: 2
      queue_size: 1000
      batch:
        flush_timeout: 200ms
        min_size: 2000
        max_size: 20000
service:
  extensions: [file_storage/queue]
  pipelines:
    traces/status:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [statustrace]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
`

func testFactories() (otelcol.Factories, error) {
	var err error
	f := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory()); err != nil {
		return f, err
	}
	if f.Processors, err = otelcol.MakeFactoryMap[processor.Factory](memorylimiterprocessor.NewFactory()); err != nil {
		return f, err
	}
	if f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](NewFactory()); err != nil {
		return f, err
	}
	f.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](filestorage.NewFactory())
	return f, err
}

// runCollector starts a collector and returns a function that shuts it down
// and waits for it.
func runCollector(t *testing.T, o collectorOpts, compression string) (stop func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	yaml := fmt.Sprintf(collectorYAML, o.otlpAddr, o.endpoint, o.database, o.queueDir, compression)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo:               component.BuildInfo{Command: "statustrace-test", Version: "test"},
		Factories:               testFactories,
		DisableGracefulShutdown: true,
		SkipSettingGRPCLogger:   true,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:              []string{"file:" + path},
			ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory()},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- col.Run(context.Background()) }()
	deadline := time.Now().Add(2 * time.Minute)
	for col.GetState() != otelcol.StateRunning {
		select {
		case err := <-done:
			t.Fatalf("collector stopped while starting: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("collector did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			col.Shutdown()
			if err := <-done; err != nil {
				t.Errorf("collector run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// fixedIDs lets the SDK emit spans with the IDs the test chose.
type fixedIDs struct {
	mu    sync.Mutex
	trace trace.TraceID
	span  trace.SpanID
}

func (g *fixedIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) { return g.trace, g.span }
func (g *fixedIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	return g.span
}

// sdkSender sends transitions as the plugin does: OTel SDK spans over the
// OTLP gRPC exporter, scope event.ScopeName, ending at the transition time.
type sdkSender struct {
	tp  *sdktrace.TracerProvider
	ids *fixedIDs
}

func newSDKSender(t *testing.T, otlpAddr string) *sdkSender {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(otlpAddr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	ids := &fixedIDs{}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(256)),
		sdktrace.WithIDGenerator(ids),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "statustrace-test"))),
	)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &sdkSender{tp: tp, ids: ids}
}

func (s *sdkSender) send(t *testing.T, ts []transition) {
	t.Helper()
	tracer := s.tp.Tracer(event.ScopeName)
	other := s.tp.Tracer("some/other/library")
	for _, tr := range ts {
		attrs := []attribute.KeyValue{
			attribute.String(event.AttrTenant, tr.Tenant),
			attribute.String(event.AttrNamespace, tr.Namespace),
			attribute.String(event.AttrFunction, tr.Function),
			attribute.String(event.AttrQualifier, tr.Qualifier),
			attribute.String(event.AttrRequestID, tr.RequestID),
			attribute.String(event.AttrInvokeType, tr.InvokeType),
			attribute.Int64(event.AttrSeq, int64(tr.Seq)),
			attribute.Int64(event.AttrAttempt, int64(tr.Attempt)),
			attribute.String(event.AttrFromState, tr.From.String()),
			attribute.String(event.AttrToState, tr.To.String()),
			attribute.String(event.AttrNode, tr.Node),
			attribute.String(event.AttrSpanRole, event.RoleTransition),
		}
		if tr.ErrorCode != "" {
			attrs = append(attrs, attribute.String(event.AttrErrorCode, tr.ErrorCode))
		}
		if tr.ErrorMessage != "" {
			attrs = append(attrs, attribute.String(event.AttrErrorMsg, tr.ErrorMessage))
		}
		end := time.Unix(0, tr.TimeUnixNano)
		s.ids.mu.Lock()
		s.ids.trace, s.ids.span = tr.TraceID, tr.SpanID
		_, sp := tracer.Start(context.Background(), tr.To.String(), trace.WithTimestamp(end.Add(-time.Millisecond)), trace.WithAttributes(attrs...))
		sp.End(trace.WithTimestamp(end))
		if tr.To.Terminal() { // the event's root span and an unrelated span: both ignored
			attrs[len(attrs)-1] = attribute.String(event.AttrSpanRole, event.RoleEvent)
			_, sp = tracer.Start(context.Background(), tr.Function, trace.WithTimestamp(end.Add(-time.Second)), trace.WithAttributes(attrs...))
			sp.End(trace.WithTimestamp(end))
			_, sp = other.Start(context.Background(), "unrelated", trace.WithAttributes(attrs...))
			sp.End()
		}
		s.ids.mu.Unlock()
	}
	if err := s.tp.ForceFlush(context.Background()); err != nil {
		t.Fatalf("flush spans: %v", err)
	}
}

// waitRows polls until the raw table holds want distinct transitions (the
// table may not exist yet: the collector creates the schema in the
// background).
func waitRows(t *testing.T, db *chtest.DB, want uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var n uint64
	var err error
	for time.Now().Before(deadline) {
		err = db.Conn.QueryRow(queryCtx(t), "SELECT count() FROM "+q(db, "transitions")+" FINAL").Scan(&n)
		if err == nil && n >= want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%d transitions arrived within %s, want %d (last error: %v)", n, within, want, err)
}

// waitSchema waits until the collector's exporter has applied every
// migration to db.
func waitSchema(t *testing.T, db *chtest.DB) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		applied, latest, err := migrate.Status(queryCtx(t), db.Conn, migrate.Options{Database: db.Name})
		// The retention setting is Up's last write: until it is there the
		// collector is still migrating, and a fault injected then can race
		// with the connections it is opening.
		var settled uint64
		if err == nil {
			err = db.Conn.QueryRow(queryCtx(t), "SELECT count() FROM "+q(db, schema.Settings)+" WHERE "+schema.ColSettingName+" = ?",
				schema.SettingRetentionSeconds).Scan(&settled)
		}
		if err == nil && len(applied) > 0 && applied[len(applied)-1].Version == latest && settled > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("schema not created within 2m: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkExactlyOnce asserts every view shows each transition once.
func checkExactlyOnce(t *testing.T, db *chtest.DB, ts []transition) {
	t.Helper()
	diffEvents(t, "events view", selectEvents(t, db, eventsQuery, "events"), expectEvents(ts))
	diffStats(t, "stats view", selectStats(t, db, statsQuery, schema.Stats), expectStats(ts))
	if n := count(t, db, "SELECT count() FROM "+q(db, "transitions")+" FINAL"); n != uint64(len(ts)) {
		t.Errorf("%d distinct transitions, want %d", n, len(ts))
	}
}

func TestCollectorPipeline(t *testing.T) {
	db := newDB(t)
	otlp := freeport.Addr(t)
	runCollector(t, collectorOpts{otlpAddr: otlp, endpoint: db.DSN, database: db.Name, queueDir: t.TempDir()}, testCompression)
	rng := rand.New(rand.NewPCG(11, 12))
	ts := genEvents(rng, 60, time.Now().Add(-time.Hour), 30*time.Minute)
	newSDKSender(t, otlp).send(t, ts)
	waitRows(t, db, uint64(len(ts)), 2*time.Minute)
	checkExactlyOnce(t, db, ts)
	// Root "event" spans and other scopes' spans were not written.
	if n := count(t, db, "SELECT count() FROM "+q(db, "transitions")); n != uint64(len(ts)) {
		t.Errorf("raw table holds %d rows, want %d", n, len(ts))
	}
}

// viaProxy rewrites the DSN's host to the proxy's.
func viaProxy(t *testing.T, dsn, proxyAddr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxyAddr
	return u.String()
}

func dsnHost(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// ClickHouse unreachable for a while, then back: every transition lands
// exactly once.
func TestClickHouseOutage(t *testing.T) {
	db := newDB(t)
	px := faultproxy.New(t, dsnHost(t, db.DSN))
	otlp := freeport.Addr(t)
	runCollector(t, collectorOpts{otlpAddr: otlp, endpoint: viaProxy(t, db.DSN, px.Addr), database: db.Name, queueDir: t.TempDir()}, testCompression)
	rng := rand.New(rand.NewPCG(13, 14))
	ts := genEvents(rng, 60, time.Now().Add(-time.Hour), 30*time.Minute)
	sender := newSDKSender(t, otlp)

	sender.send(t, ts[:len(ts)/3]) // lands normally
	waitRows(t, db, uint64(len(ts)/3), 2*time.Minute)

	px.Set(faultproxy.Refuse)
	sender.send(t, ts[len(ts)/3:]) // accepted by the collector, queued, retried
	time.Sleep(3 * time.Second)    // several failed attempts
	if n := count(t, db, "SELECT count() FROM "+q(db, "transitions")+" FINAL"); n != uint64(len(ts)/3) {
		t.Fatalf("%d rows while ClickHouse was unreachable, want %d", n, len(ts)/3)
	}
	px.Set(faultproxy.Pass)
	waitRows(t, db, uint64(len(ts)), 2*time.Minute)
	checkExactlyOnce(t, db, ts)
}

// The persistent queue keeps what was accepted across a collector restart
// while ClickHouse is unreachable.
func TestCollectorRestartLosesNothingQueued(t *testing.T) {
	db := newDB(t)
	px := faultproxy.New(t, dsnHost(t, db.DSN))
	queueDir := t.TempDir()
	otlp := freeport.Addr(t)
	opts := collectorOpts{otlpAddr: otlp, endpoint: viaProxy(t, db.DSN, px.Addr), database: db.Name, queueDir: queueDir}
	stop := runCollector(t, opts, testCompression)
	waitSchema(t, db) // created while ClickHouse is reachable
	px.Set(faultproxy.Refuse)
	rng := rand.New(rand.NewPCG(15, 16))
	ts := genEvents(rng, 40, time.Now().Add(-time.Hour), 30*time.Minute)
	newSDKSender(t, otlp).send(t, ts)
	time.Sleep(time.Second) // the queue has them and retries
	stop()
	if n := count(t, db, "SELECT count() FROM "+q(db, "transitions")); n != 0 {
		t.Fatalf("%d rows arrived while ClickHouse was unreachable", n)
	}
	entries, err := os.ReadDir(queueDir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no persistent queue files in %s: %v", queueDir, err)
	}

	px.Set(faultproxy.Pass)
	runCollector(t, opts, testCompression) // a new process would do the same: read the queue
	waitRows(t, db, uint64(len(ts)), 2*time.Minute)
	checkExactlyOnce(t, db, ts)
}
