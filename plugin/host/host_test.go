package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/plugin"
	"github.com/statustrace/statustrace/plugin/spans"
	"github.com/statustrace/statustrace/testkit/otlptest"
)

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Many events through the real plugin binary: exactly the expected spans,
// with their parents and attributes, arrive at a real OTLP receiver.
func TestManyEventsArriveAsSpans(t *testing.T) {
	recv := otlptest.Start(t)
	rep := startReporter(t, Config{PluginConfig: pluginConfig(t, recv), BatchSize: 64, FlushInterval: 10 * time.Millisecond})
	const events = 300
	for i := 0; i < events; i++ {
		for _, tr := range lifecycle("ns", "fn", fmt.Sprintf("req-%04d", i), base+int64(i)*1e6) {
			rep.Report(tr)
		}
	}
	closeReporter(t, rep)
	st := rep.Stats()
	if st.Reported != events*5 || st.Acked != events*5 || st.Dropped != 0 || st.Rejected != 0 || st.QueueDepth != 0 || st.Unacked != 0 {
		t.Fatalf("stats %+v", st)
	}
	got := recv.Spans()
	if len(got) != events*6 {
		t.Fatalf("got %d distinct spans, want %d", len(got), events*6)
	}
	for i := 0; i < events; i++ {
		id := fmt.Sprintf("req-%04d", i)
		ids := spansOfEvent(id)
		root := got[ids[0]]
		if root.Name != "fn" || root.ParentSpanID != "" || root.Attrs[event.AttrSpanRole] != event.RoleEvent ||
			root.Start != base+int64(i)*1e6 || root.End != base+int64(i)*1e6+4000 {
			t.Fatalf("event %s root span %+v", id, root)
		}
		for seq, key := range ids[1:] {
			sp, ok := got[key]
			if !ok {
				t.Fatalf("event %s: span of seq %d missing", id, seq+1)
			}
			if sp.ParentSpanID != spans.EventSpanID(id).String() || sp.Attrs[event.AttrSeq] != int64(seq+1) ||
				sp.Attrs[event.AttrRequestID] != id || sp.Attrs[event.AttrSpanRole] != event.RoleTransition ||
				sp.Attrs[event.AttrTenant] != "acct-fn" || sp.Scope != event.ScopeName {
				t.Fatalf("event %s seq %d: %+v", id, seq+1, sp)
			}
		}
	}
}

// (c) kill -9 of the plugin mid-run, twice: once while acknowledged
// batches wait in its spool for a stalled receiver, once while batches are
// on the stream. The host restarts it and re-sends what was not
// acknowledged, the new process sends what the dead one spooled; every
// transition arrives, and duplicates (counted) carry the same IDs and
// content, so storage deduplicates them.
func TestPluginKilledMidStreamLosesNothing(t *testing.T) {
	recv := otlptest.Start(t)
	rep := startReporter(t, Config{PluginConfig: pluginConfig(t, recv), BatchSize: 32, FlushInterval: 5 * time.Millisecond})
	ctx := waitCtx(t)
	kill := func() {
		t.Helper()
		pid := rep.PluginPID()
		if pid == 0 {
			t.Fatal("no plugin pid")
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d: %v", pid, err)
		}
		for rep.PluginPID() == pid || rep.PluginPID() == 0 {
			if ctx.Err() != nil {
				t.Fatalf("plugin not restarted: %+v", rep.Stats())
			}
			time.Sleep(time.Millisecond)
		}
	}
	reportLifecycles(rep, "kill", 0, 200)
	if !recv.WaitFor(ctx, func(r *otlptest.Receiver) bool { return r.Received() > 0 }) {
		t.Fatal("nothing arrived before the kill")
	}
	// Hold exports: batches are acknowledged (spooled), not exported.
	recv.Stall()
	reportLifecycles(rep, "kill", 200, 400)
	for rep.Stats().Acked < 400*5 {
		if ctx.Err() != nil {
			t.Fatalf("not all spooled: %+v", rep.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	kill()
	recv.Release()
	reportLifecycles(rep, "kill", 400, 600)
	kill() // batches of 400-600 may be on the stream or in the spool
	reportLifecycles(rep, "kill", 600, 700)
	closeReporter(t, rep)

	st := rep.Stats()
	if st.Restarts != 2 || st.Dropped != 0 || st.Acked != 700*5 || st.Replayed == 0 {
		t.Fatalf("stats %+v", st)
	}
	got := recv.Spans()
	missing := 0
	for i := 0; i < 700; i++ {
		for _, key := range spansOfEvent(fmt.Sprintf("kill-%05d", i)) {
			if _, ok := got[key]; !ok {
				missing++
			}
		}
	}
	if missing > 0 || len(got) != 700*6 {
		t.Fatalf("%d spans missing, %d distinct received, want %d", missing, len(got), 700*6)
	}
	if d := recv.DuplicatesThatDiffered(); len(d) > 0 {
		t.Fatalf("%d re-sent spans differ from the first copy, e.g. %s", len(d), d[0])
	}
	t.Logf("received %d spans for %d distinct: %d duplicates on the wire (restarts %d, replayed %d transitions, re-sent %d)",
		recv.Received(), len(got), recv.Received()-len(got), st.Restarts, st.Replayed, st.Sent-st.Acked)
}

// A plugin that hangs (SIGSTOP) acknowledges nothing: after AckTimeout the
// host kills it (go-plugin's own Kill would wait forever for it) and starts
// another, and everything arrives.
func TestHungPluginIsReplaced(t *testing.T) {
	recv := otlptest.Start(t)
	rep := startReporter(t, Config{PluginConfig: pluginConfig(t, recv), FlushInterval: time.Millisecond,
		AckTimeout: 300 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	pid := rep.PluginPID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	reportLifecycles(rep, "hung", 0, 50)
	ctx := waitCtx(t)
	for rep.PluginPID() == pid || rep.PluginPID() == 0 {
		if ctx.Err() != nil {
			t.Fatalf("hung plugin not replaced: %+v", rep.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	closeReporter(t, rep)
	if alive(pid) {
		t.Error("the hung plugin still runs")
	}
	if n := len(recv.Spans()); n != 50*6 {
		t.Fatalf("%d spans, want %d", n, 50*6)
	}
}

// A stalled plugin: the buffer fills, Report drops and counts instead of
// blocking, and everything accepted still arrives once the plugin recovers.
// The plugin itself is stopped (SIGSTOP): a stalled receiver no longer
// fills the host's buffer, since the plugin acknowledges once a batch is in
// its spool.
func TestFullBufferDropsAndCounts(t *testing.T) {
	recv := otlptest.Start(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rep := startReporter(t, Config{PluginConfig: pluginConfig(t, recv), BufferSize: 64, BatchSize: 8,
		MaxInflightBatches: 2, FlushInterval: time.Millisecond, MeterProvider: mp})
	pid := rep.PluginPID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	total := 5000
	for i := 0; i < total; i++ {
		rep.Report(lifecycle("ns", "fn", fmt.Sprintf("full-%05d", i), base)[0])
	}
	// On a loaded machine the loop may take its in-flight batches out of
	// the buffer only after the burst above. Wait until it holds all it may
	// (MaxInflightBatches unacknowledged: it takes nothing more from the
	// stopped plugin's buffer), then top the buffer up until it is full.
	for deadline := time.Now().Add(time.Minute); rep.Stats().Unacked < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the loop never took its 2 in-flight batches: %+v", rep.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; i < 200 && metricValue(t, reader, "statustrace.reporter.queue.depth", "") < 64; i++ {
		rep.Report(lifecycle("ns", "fn", fmt.Sprintf("full-top-%03d", i), base)[0])
		total++
		time.Sleep(10 * time.Millisecond)
	}
	st := rep.Stats()
	if st.Dropped == 0 || st.Reported+st.Dropped != uint64(total) {
		t.Fatalf("stats %+v: want drops, and reported+dropped = %d", st, total)
	}
	if got := droppedMetric(t, reader); got != int64(st.Dropped) {
		t.Fatalf("dropped metric %d, stats %d", got, st.Dropped)
	}
	// What the backlog alert (deploy/prometheus) compares: a full buffer
	// has depth = capacity.
	depth := metricValue(t, reader, "statustrace.reporter.queue.depth", "")
	capacity := metricValue(t, reader, "statustrace.reporter.queue.capacity", "")
	if capacity != 64 || depth != capacity {
		t.Fatalf("queue depth %d, capacity %d: want a full buffer of 64", depth, capacity)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	closeReporter(t, rep)
	st = rep.Stats()
	if n := len(recv.Spans()); uint64(n) != st.Reported || st.Acked != st.Reported {
		t.Fatalf("%d spans arrived, stats %+v", n, st)
	}
}

func droppedMetric(t *testing.T, reader *sdkmetric.ManualReader) int64 {
	t.Helper()
	return metricValue(t, reader, "statustrace.reporter.dropped", "buffer_full")
}

// metricValue collects reader and returns the value of the int64 sum or
// gauge name (with reason=reason when reason is not empty).
func metricValue(t *testing.T, reader *sdkmetric.ManualReader, name, reason string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			var points []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				points = d.DataPoints
			case metricdata.Gauge[int64]:
				points = d.DataPoints
			}
			for _, dp := range points {
				if v, _ := dp.Attributes.Value(attribute.Key("reason")); reason == "" || v.AsString() == reason {
					return dp.Value
				}
			}
		}
	}
	t.Fatalf("no %s (reason %q)", name, reason)
	return 0
}

// Switching a function off stops its spans at once; switching it on resumes
// them. Other functions are not affected, and nothing counts as dropped.
func TestTracingSwitch(t *testing.T) {
	recv := otlptest.Start(t)
	rep := startReporter(t, Config{PluginConfig: pluginConfig(t, recv), FlushInterval: time.Millisecond})
	rep.SetTracing("ns", "quiet", false)
	if rep.Tracing("ns", "quiet") || !rep.Tracing("ns", "loud") || !rep.Tracing("other", "quiet") {
		t.Fatal("Tracing does not reflect SetTracing")
	}
	for i := 0; i < 20; i++ {
		for _, tr := range lifecycle("ns", "quiet", fmt.Sprintf("off-%d", i), base) {
			rep.Report(tr)
		}
		for _, tr := range lifecycle("ns", "loud", fmt.Sprintf("loud-%d", i), base) {
			rep.Report(tr)
		}
	}
	rep.SetTracing("ns", "quiet", true)
	for i := 0; i < 20; i++ {
		for _, tr := range lifecycle("ns", "quiet", fmt.Sprintf("on-%d", i), base) {
			rep.Report(tr)
		}
	}
	closeReporter(t, rep)
	got := recv.Spans()
	count := map[string]int{}
	for _, sp := range got {
		id := sp.Attrs[event.AttrRequestID].(string)
		count[id[:strings.IndexByte(id, '-')]]++
	}
	if count["off"] != 0 || count["loud"] != 20*6 || count["on"] != 20*6 {
		t.Fatalf("spans per group %v", count)
	}
	if st := rep.Stats(); st.Dropped != 0 || st.Reported != 40*5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStartErrors(t *testing.T) {
	recv := otlptest.Start(t)
	ctx := context.Background()
	if _, err := Start(ctx, Config{}); err == nil || !strings.Contains(err.Error(), "PluginPath") {
		t.Errorf("empty config: %v", err)
	}
	if _, err := Start(ctx, Config{PluginPath: "/nonexistent/statustrace-plugin"}); err == nil {
		t.Error("missing binary: no error")
	}
	_, err := Start(ctx, Config{PluginPath: pluginPath, PluginConfig: map[string]string{"otlp.endpiont": recv.GRPCAddr}})
	if err == nil || !strings.Contains(err.Error(), "otlp.endpiont") {
		t.Errorf("bad plugin config: %v", err)
	}
}

// Report after Close is dropped and counted, never blocks or panics; a
// second Close says so.
func TestReportAfterClose(t *testing.T) {
	recv := otlptest.Start(t)
	rep := startReporter(t, Config{PluginConfig: pluginConfig(t, recv)})
	closeReporter(t, rep)
	rep.Report(lifecycle("ns", "fn", "late", base)[0])
	if st := rep.Stats(); st.Dropped != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := rep.Close(context.Background()); err != ErrClosed {
		t.Fatalf("second close: %v", err)
	}
	if rep.PluginPID() != 0 {
		t.Fatal("plugin still running after Close")
	}
}

// Close with a deadline that cannot be met (the plugin hangs: SIGSTOP)
// stops the plugin anyway and says how much was not acknowledged.
func TestCloseDeadline(t *testing.T) {
	recv := otlptest.Start(t)
	rep := startReporter(t, Config{PluginConfig: pluginConfig(t, recv), FlushInterval: time.Millisecond})
	pid := rep.PluginPID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		rep.Report(lifecycle("ns", "fn", fmt.Sprintf("dl-%d", i), base)[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := rep.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "100 transitions not acknowledged") {
		t.Fatalf("close: %v", err)
	}
	<-rep.done
	if rep.PluginPID() != 0 || alive(pid) {
		t.Fatal("plugin still running")
	}
}

// A graceful stop with the collector up sends everything before Close
// returns: nothing is left in the spool for a next start.
func TestCloseDrainsTheSpool(t *testing.T) {
	recv := otlptest.Start(t)
	cfg := pluginConfig(t, recv)
	rep := startReporter(t, Config{PluginConfig: cfg, BatchSize: 64, FlushInterval: time.Millisecond})
	reportLifecycles(rep, "drain", 0, 500)
	closeReporter(t, rep)
	if n := len(recv.Spans()); n != 500*6 {
		t.Fatalf("%d spans arrived before Close returned, want %d", n, 500*6)
	}
	st := rep.Stats()
	if st.Spooled != 500*5 || st.Exported != 500*5 || st.SpoolBytes != 0 || st.Replayed != 0 {
		t.Fatalf("stats %+v", st)
	}
	if entries, err := os.ReadDir(cfg[plugin.KeySpoolDir]); err != nil || len(entries) != 0 {
		t.Fatalf("spool folder after a clean stop: %v %v", entries, err)
	}
}

// A plugin whose host died without stopping it (kill -9 of the scheduler)
// exits by itself instead of lingering.
func TestOrphanPluginExits(t *testing.T) {
	// sh starts the plugin in the background, waits for its handshake line
	// (it is serving) and exits: the plugin loses its parent as it would
	// when the host is killed.
	handshake := filepath.Join(t.TempDir(), "handshake")
	cmd := exec.Command("sh", "-c", `"$0" >"$1" 2>/dev/null & echo $!; while [ ! -s "$1" ]; do sleep 0.01; done`, pluginPath, handshake)
	cmd.Env = append(os.Environ(), plugin.Handshake.MagicCookieKey+"="+plugin.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("pid %q: %v", out, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	ctx := waitCtx(t)
	for alive(pid) {
		if ctx.Err() != nil {
			t.Fatalf("orphaned plugin %d still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// The plugin dies and cannot be started again for a while: Report keeps
// returning, drops and counts once the buffer is full, and what was
// accepted arrives once the plugin can be started again.
func TestPluginDownDropsThenRecovers(t *testing.T) {
	recv := otlptest.Start(t)
	bin := filepath.Join(t.TempDir(), "statustrace-plugin")
	data, err := os.ReadFile(pluginPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	rep, err := Start(context.Background(), Config{PluginPath: bin, PluginConfig: pluginConfig(t, recv),
		BufferSize: 64, BatchSize: 8, MaxInflightBatches: 2, FlushInterval: time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Error})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rep.Close(context.Background()) })
	if err := os.Rename(bin, bin+".away"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(rep.PluginPID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	const total = 3000
	for i := 0; i < total; i++ {
		rep.Report(lifecycle("ns", "fn", fmt.Sprintf("down-%05d", i), base)[0])
	}
	st := rep.Stats()
	if st.Dropped == 0 || st.Reported+st.Dropped != total {
		t.Fatalf("stats %+v", st)
	}
	ctx := waitCtx(t)
	for !strings.Contains(logs.String(), "restart failed") {
		if ctx.Err() != nil {
			t.Fatal("no failed restart attempt logged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.Rename(bin+".away", bin); err != nil {
		t.Fatal(err)
	}
	closeReporter(t, rep)
	st = rep.Stats()
	if n := len(recv.Spans()); uint64(n) != st.Reported || st.Acked != st.Reported || st.Restarts < 1 {
		t.Fatalf("%d spans arrived, stats %+v", n, st)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The typed and the raw plugin configuration merge; a key in both, or a
// key the contract does not know, fails Validate before any launch.
func TestPluginConfigTypedAndRaw(t *testing.T) {
	t.Parallel()
	base := Config{PluginPath: "/nonexistent", Plugin: plugin.Config{Endpoint: "collector:4317", ServiceName: "s"}}.withDefaults()
	m, err := base.pluginMap()
	if err != nil || m[plugin.KeyEndpoint] != "collector:4317" || m[plugin.KeyServiceName] != "s" {
		t.Fatalf("typed: %v, %v", m, err)
	}
	both := base
	both.PluginConfig = map[string]string{plugin.KeyEndpoint: "other:4317", plugin.KeySpoolDir: "/spool"}
	if err := both.Validate(); err == nil || !strings.Contains(err.Error(), plugin.KeyEndpoint) {
		t.Errorf("a key set twice: %v", err)
	}
	raw := base
	raw.PluginConfig = map[string]string{"otlp.endpiont": "x:1"}
	if err := raw.Validate(); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Errorf("unknown key: %v", err)
	}
}
