package statustraceexporter

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/exporter/internal/metadata"
	"github.com/statustrace/statustrace/exporter/internal/rows"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func badStatusTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	ss.Scope().SetName(event.ScopeName)
	for i := range 3 {
		sp := ss.Spans().AppendEmpty()
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		a := sp.Attributes()
		a.PutStr(event.AttrSpanRole, event.RoleTransition)
		a.PutStr(event.AttrTenant, "t")
		a.PutStr(event.AttrFunction, "f")
		a.PutStr(event.AttrRequestID, "r")
		a.PutInt(event.AttrSeq, int64(i+1))
		a.PutStr(event.AttrToState, "NOT_A_STATE")
	}
	return td
}

func sumOf(t *testing.T, tel *componenttest.Telemetry, name string) map[string]int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		t.Fatalf("metric %s: %v", name, err)
	}
	out := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		var key []string
		for _, kv := range dp.Attributes.ToSlice() {
			key = append(key, string(kv.Key)+"="+kv.Value.AsString())
		}
		out[strings.Join(key, ",")] += dp.Value
	}
	for k, v := range out {
		if v == 0 { // series are created at 0: only what happened counts
			delete(out, k)
		}
	}
	return out
}

// A batch of only malformed status spans is dropped and counted without
// touching ClickHouse (which here does not even exist).
func TestPushDropsAndCountsWithoutClickHouse(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := exportertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	core, logs := observer.New(zapcore.WarnLevel)
	set.Logger = zap.New(core)

	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Endpoint = "tcp://" + closedPort(t)
	e, err := newExporter(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.pushTraces(context.Background(), badStatusTraces()); err != nil {
		t.Fatalf("malformed spans must not fail the batch: %v", err)
	}
	got := sumOf(t, tel, "statustrace_exporter_spans_dropped")
	if got["reason=unknown_state"] != 3 {
		t.Errorf("dropped metric: %v", got)
	}
	if logs.FilterMessage("dropped status spans").Len() != 1 {
		t.Errorf("want one drop log line, got %v", logs.All())
	}
}

func TestDropLogIsRateLimited(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	now := time.Unix(1000, 0)
	d := newDropLog(zap.New(core), 10*time.Second, func() time.Time { return now })
	st := rows.Stats{}
	st.Dropped[rows.DropWrongType] = 2
	st.Example[rows.DropWrongType] = rows.DropDetail{Attribute: event.AttrSeq, RequestID: "r1"}
	for range 100 {
		d.add(&st)
		now = now.Add(10 * time.Millisecond)
	}
	if n := logs.Len(); n != 1 {
		t.Fatalf("%d log lines in 1s, want 1", n)
	}
	now = now.Add(10 * time.Second)
	d.add(&st)
	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("want a second line after the interval, got %d", len(entries))
	}
	// The second line carries everything counted since the first.
	if got := entries[1].ContextMap()["wrong_type"]; got != int64(2*100) {
		t.Errorf("second line counts %v, want %d", got, 2*100)
	}
}

// ClickHouse down at start: the collector still starts, the export fails
// with a retryable error, and the password appears in no log line.
func TestStartWithClickHouseDownNeverLogsPassword(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	set := exportertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Endpoint = "tcp://" + closedPort(t) + "?dial_timeout=200ms"
	cfg.Username = "u"
	cfg.Password = "hunter2-secret"
	e, err := newExporter(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatalf("start must not fail while ClickHouse is down: %v", err)
	}
	defer e.shutdown(ctx)
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	ss.Scope().SetName(event.ScopeName)
	sp := ss.Spans().AppendEmpty()
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	for k, v := range map[string]string{event.AttrSpanRole: event.RoleTransition, event.AttrTenant: "t", event.AttrFunction: "f", event.AttrRequestID: "r", event.AttrToState: "QUEUED"} {
		sp.Attributes().PutStr(k, v)
	}
	sp.Attributes().PutInt(event.AttrSeq, 1)
	pushCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond) // the export timeout
	defer cancel()
	err = e.pushTraces(pushCtx, td)
	if err == nil {
		t.Fatal("want an error while ClickHouse is down")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
	// The background migration fails and says so (twice: it retries).
	deadline := time.Now().Add(time.Minute)
	for logs.FilterMessageSnippet("schema migration failed").Len() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("want warnings about the failed migration, got %v", logs.All())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range logs.All() {
		if strings.Contains(l.Message, "hunter2") || strings.Contains(fmtFields(l.ContextMap()), "hunter2") {
			t.Errorf("log leaks the password: %v", l)
		}
	}
}

func fmtFields(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(toString(v), "\n", " "), "\t", " ")))
	}
	return b.String()
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}

// What is pending in the rate-limited drop log is written at shutdown,
// not lost with the process.
func TestDropLogFlushesAtShutdown(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	now := time.Unix(1000, 0)
	d := newDropLog(zap.New(core), 10*time.Second, func() time.Time { return now })
	st := rows.Stats{}
	st.Dropped[rows.DropExpired] = 101
	st.Example[rows.DropExpired] = rows.DropDetail{Attribute: "end_time", RequestID: "old-004"}
	d.add(&st) // logged at once
	now = now.Add(time.Second)
	d.add(&st) // pending: within the interval
	if logs.Len() != 1 {
		t.Fatalf("%d lines before shutdown, want 1", logs.Len())
	}
	d.flush()
	d.flush() // nothing pending any more: no second line
	entries := logs.All()
	if len(entries) != 2 || entries[1].ContextMap()["expired"] != int64(101) {
		t.Fatalf("after flush: %v", entries)
	}
}

// Every drop reason and every repaired field has its own series: recording
// a Stats with each entry set counts each once (the attribute arrays are
// sized by the rows constants, so a new reason or field cannot panic).
func TestRecordCoversEveryReasonAndField(t *testing.T) {
	t.Parallel()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := exportertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Endpoint = "tcp://" + closedPort(t)
	e, err := newExporter(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	var st rows.Stats
	for _, r := range rows.DropReasons() {
		st.Dropped[r] = 1
	}
	for f := range st.Truncated {
		st.Truncated[f], st.Sanitized[f] = 1, 1
	}
	e.record(context.Background(), &st)
	dropped := sumOf(t, tel, "statustrace_exporter_spans_dropped")
	if len(dropped) != len(rows.DropReasons()) {
		t.Errorf("%d drop series for %d reasons: %v", len(dropped), len(rows.DropReasons()), dropped)
	}
	for _, r := range rows.DropReasons() {
		if dropped["reason="+r.String()] != 1 {
			t.Errorf("reason %s: %v", r, dropped)
		}
	}
	repaired := sumOf(t, tel, "statustrace_exporter_fields_repaired")
	if want := len(repairNames) * int(rows.NumFields); len(repaired) != want {
		t.Errorf("%d repair series, want %d: %v", len(repaired), want, repaired)
	}
	for f := range rows.NumFields {
		for _, rep := range repairNames {
			if k := "field=" + f.String() + ",repair=" + rep; repaired[k] != 1 {
				t.Errorf("%s: %v", k, repaired)
			}
		}
	}
}
