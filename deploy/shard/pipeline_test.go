package shard_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/statustrace/statustrace/deploy/shard"
	"github.com/statustrace/statustrace/event"
	statustraceexporter "github.com/statustrace/statustrace/exporter"
	"github.com/statustrace/statustrace/internal/freeport"
	"github.com/statustrace/statustrace/plugin"
	"github.com/statustrace/statustrace/plugin/spans"
)

// pluginTenant is the tenant of the events the real plugin sends.
const pluginTenant = "tenant-plugin"

// sendThroughCollector runs the write path as deployed: the plugin's Sink
// exports spans over OTLP to a collector pipeline made of the real
// components (the OTLP receiver, the statustrace exporter) whose exporter
// writes through the router's Distributed tables; a second statustrace
// exporter on the same receiver writes the single-node database. It
// returns the request IDs sent, once both databases hold every transition.
func sendThroughCollector(t *testing.T, ctx context.Context, set *shard.Set, base time.Time, n int) []string {
	t.Helper()
	router := startExporter(t, ctx, "tcp://"+set.Router.TCPAddr, shardedDB, shard.RouterSettings)
	single := startExporter(t, ctx, "tcp://"+set.Router.TCPAddr, singleDB, nil)
	next, err := consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		if err := router.ConsumeTraces(ctx, td); err != nil {
			return err
		}
		return single.ConsumeTraces(ctx, td)
	})
	if err != nil {
		t.Fatal(err)
	}
	ports, err := freeport.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	rf := otlpreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig()
	cm := confmap.NewFromStringMap(map[string]any{"protocols": map[string]any{"grpc": map[string]any{"endpoint": addr}}})
	if err := cm.Unmarshal(rcfg); err != nil {
		t.Fatal(err)
	}
	recv, err := rf.CreateTraces(ctx, receivertest.NewNopSettings(rf.Type()), rcfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = recv.Shutdown(context.Background()) })

	sink := spans.NewSink(nil)
	if err := sink.Configure(ctx, map[string]string{plugin.KeyEndpoint: addr, plugin.KeyInsecure: "true",
		plugin.KeyServiceName: "shard-test", plugin.KeySpoolDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Shutdown(context.Background()) })

	var batch []event.Transition
	var ids []string
	for i := range n {
		k := event.Keys{Tenant: pluginTenant, Namespace: "ns", Function: fmt.Sprintf("fn-%d", i%3), Qualifier: "LATEST", RequestID: fmt.Sprintf("p-%03d", i)}
		at := base.Add(time.Duration(i) * time.Second).UnixNano()
		mk := func(seq uint64, attempt uint32, from, to event.State, after time.Duration) event.Transition {
			return event.Transition{Keys: k, Seq: seq, Attempt: attempt, From: from, To: to, TimeUnixNano: at + int64(after), InvokeType: "async", Node: "node-a"}
		}
		end := []event.State{event.StateFinished, event.StateFailed, event.StateAborted}[i%3]
		ts := []event.Transition{
			mk(1, 0, event.StateNone, event.StateQueued, 0),
			mk(2, 1, event.StateQueued, event.StateRunning, time.Second),
		}
		if end == event.StateAborted {
			ts = append(ts, mk(3, 1, event.StateRunning, event.StateTerminating, 2*time.Second), mk(4, 1, event.StateTerminating, end, 3*time.Second))
		} else {
			ts = append(ts, mk(3, 1, event.StateRunning, end, 2*time.Second))
			if end == event.StateFailed {
				ts[2].ErrorCode, ts[2].ErrorMessage = "HandlerError", "boom"
			}
		}
		batch = append(batch, ts...)
		ids = append(ids, k.RequestID)
	}
	done := make(chan error, 1)
	sink.Submit(ctx, batch, func(rejected int, err error) {
		if err == nil && rejected > 0 {
			err = fmt.Errorf("%d transitions rejected", rejected)
		}
		done <- err
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The Sink acknowledges once the batch is spooled; wait for the
	// export to land in both databases.
	for _, dsn := range []string{set.Router.DSN(shardedDB, shard.RouterSettings), set.Router.DSN(singleDB, nil)} {
		c := open(t, dsn)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			var got uint64
			if err := c.QueryRow(ctx, "SELECT sum(n) FROM (SELECT uniqExact(request_id, seq) AS n FROM transitions WHERE tenant = {t:String})",
				clickhouseNamed("t", pluginTenant)).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got == uint64(len(batch)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d transitions arrived through the collector", dsn, got, len(batch))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return ids
}

func startExporter(t *testing.T, ctx context.Context, endpoint, db string, params map[string]string) exporter.Traces {
	t.Helper()
	f := statustraceexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*statustraceexporter.Config)
	cfg.Endpoint, cfg.Database = endpoint, db
	cfg.CreateSchema = false // migrated per node above
	cfg.ConnectionParams = params
	// Synchronous: the receiver answers the plugin once the rows are stored.
	cfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	var c component.Config = cfg
	exp, err := f.CreateTraces(ctx, exportertest.NewNopSettings(f.Type()), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}
