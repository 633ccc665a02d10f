package spans

import (
	"context"
	"fmt"
	"github.com/statustrace/statustrace/plugin"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/testkit/otlptest"
)

const t0 = int64(1_760_000_000_000_000_000)

func keys(id string) event.Keys {
	return event.Keys{Tenant: "acct-1", Namespace: "ns", Function: "resize", Qualifier: "v3", RequestID: id}
}

// lifecycle is the README's example: QUEUED→RUNNING→RETRYING→RUNNING→FINISHED.
func lifecycle(id string) []event.Transition {
	k := keys(id)
	mk := func(seq uint64, attempt uint32, from, to event.State, at int64) event.Transition {
		return event.Transition{Keys: k, Seq: seq, Attempt: attempt, From: from, To: to, TimeUnixNano: t0 + at,
			InvokeType: "async", Node: "node-a"}
	}
	ts := []event.Transition{
		mk(1, 0, event.StateNone, event.StateQueued, 0),
		mk(2, 1, event.StateQueued, event.StateRunning, 2_000_000),
		mk(3, 1, event.StateRunning, event.StateRetrying, 50_000_000),
		mk(4, 2, event.StateRetrying, event.StateRunning, 1_050_000_000),
		mk(5, 2, event.StateRunning, event.StateFinished, 1_090_000_000),
	}
	ts[2].ErrorCode, ts[2].ErrorMessage = "FunctionTimeout", "attempt 1 timed out after 48ms"
	return ts
}

// newSink configures a Sink with its spool in a fresh folder (unless cfg
// names one).
func newSink(t *testing.T, cfg map[string]string) *Sink {
	t.Helper()
	if _, ok := cfg[plugin.KeySpoolDir]; !ok {
		cfg[plugin.KeySpoolDir] = t.TempDir()
	}
	s := NewSink(nil)
	if err := s.Configure(context.Background(), cfg); err != nil {
		t.Fatalf("configure: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func grpcConfig(r *otlptest.Receiver) map[string]string {
	return map[string]string{plugin.KeyEndpoint: r.GRPCAddr, plugin.KeyInsecure: "true", plugin.KeyServiceName: "scheduler-test"}
}

type result struct {
	rejected int
	err      error
}

// submit hands a batch over, waits for its ack and, if it was acknowledged,
// until the Sink's spool is empty (everything exported).
func submit(t *testing.T, s *Sink, batch []event.Transition) result {
	t.Helper()
	ch := make(chan result, 1)
	s.Submit(context.Background(), batch, func(rej int, err error) { ch <- result{rej, err} })
	var r result
	select {
	case r = <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("batch never acknowledged")
	}
	if r.err == nil {
		waitExported(t, s)
	}
	return r
}

// waitExported waits until everything spooled was exported (or dropped).
func waitExported(t *testing.T, s *Sink) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for p := s.cur.Load(); p != nil && !p.spool.Empty(); {
		if time.Now().After(deadline) {
			t.Fatalf("spool not empty after 30s: %+v", s.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type wantSpan struct {
	name       string
	spanID     string
	parent     string
	start, end int64
	from, to   string
	seq        int64
	attempt    int64
	role       string
	kind       ptrace.SpanKind
	status     ptrace.StatusCode
}

func TestLifecycleSpans(t *testing.T) {
	r := otlptest.Start(t)
	s := newSink(t, grpcConfig(r))
	id := "req-0001"
	if res := submit(t, s, lifecycle(id)); res.err != nil || res.rejected != 0 {
		t.Fatalf("submit: %+v", res)
	}
	traceID := TraceID(id).String()
	root := EventSpanID(id).String()
	sid := func(seq uint64) string { return TransitionSpanID(id, seq).String() }
	want := []wantSpan{
		{"QUEUED", sid(1), root, t0, t0, "", "QUEUED", 1, 0, event.RoleTransition, ptrace.SpanKindInternal, ptrace.StatusCodeUnset},
		{"QUEUED", sid(2), root, t0, t0 + 2_000_000, "QUEUED", "RUNNING", 2, 1, event.RoleTransition, ptrace.SpanKindInternal, ptrace.StatusCodeUnset},
		{"RUNNING", sid(3), root, t0 + 2_000_000, t0 + 50_000_000, "RUNNING", "RETRYING", 3, 1, event.RoleTransition, ptrace.SpanKindInternal, ptrace.StatusCodeError},
		{"RETRYING", sid(4), root, t0 + 50_000_000, t0 + 1_050_000_000, "RETRYING", "RUNNING", 4, 2, event.RoleTransition, ptrace.SpanKindInternal, ptrace.StatusCodeUnset},
		{"RUNNING", sid(5), root, t0 + 1_050_000_000, t0 + 1_090_000_000, "RUNNING", "FINISHED", 5, 2, event.RoleTransition, ptrace.SpanKindInternal, ptrace.StatusCodeUnset},
		{"resize", root, "", t0, t0 + 1_090_000_000, "RUNNING", "FINISHED", 5, 2, event.RoleEvent, ptrace.SpanKindConsumer, ptrace.StatusCodeUnset},
	}
	got := r.Spans()
	if len(got) != len(want) {
		t.Fatalf("got %d spans, want %d: %+v", len(got), len(want), got)
	}
	for _, w := range want {
		g, ok := got[traceID+"/"+w.spanID]
		if !ok {
			t.Fatalf("span %s (%s seq %d) missing", w.spanID, w.name, w.seq)
		}
		checkSpan(t, g, w)
		if g.Scope != event.ScopeName {
			t.Errorf("scope %q", g.Scope)
		}
		if g.Resource["service.name"] != "scheduler-test" {
			t.Errorf("resource %v", g.Resource)
		}
		for k, v := range map[string]any{event.AttrTenant: "acct-1", event.AttrNamespace: "ns", event.AttrFunction: "resize",
			event.AttrQualifier: "v3", event.AttrRequestID: id, event.AttrInvokeType: "async", event.AttrNode: "node-a"} {
			if g.Attrs[k] != v {
				t.Errorf("%s %s = %v, want %v", w.name, k, g.Attrs[k], v)
			}
		}
	}
	retrying := got[traceID+"/"+sid(3)]
	if retrying.Attrs[event.AttrErrorCode] != "FunctionTimeout" || retrying.Attrs[event.AttrErrorMsg] != "attempt 1 timed out after 48ms" {
		t.Errorf("error attributes: %v", retrying.Attrs)
	}
	if _, ok := got[traceID+"/"+sid(2)].Attrs[event.AttrErrorCode]; ok {
		t.Errorf("error.type on a transition without error")
	}
	// The terminal transition carries the event's start (the exporter's
	// end-to-end duration); the others do not.
	if v := got[traceID+"/"+sid(5)].Attrs[event.AttrEventStartUnixNano]; v != t0 {
		t.Errorf("terminal span's %s = %v, want %d", event.AttrEventStartUnixNano, v, t0)
	}
	if _, ok := got[traceID+"/"+sid(3)].Attrs[event.AttrEventStartUnixNano]; ok {
		t.Errorf("%s on a non-terminal transition", event.AttrEventStartUnixNano)
	}
}

func checkSpan(t *testing.T, g otlptest.Span, w wantSpan) {
	t.Helper()
	if g.Name != w.name || g.ParentSpanID != w.parent || g.Start != w.start || g.End != w.end || g.Kind != w.kind || g.StatusCode != w.status {
		t.Errorf("span seq %d role %s: got name=%q parent=%q start=%d end=%d kind=%v status=%v; want name=%q parent=%q start=%d end=%d kind=%v status=%v",
			w.seq, w.role, g.Name, g.ParentSpanID, g.Start, g.End, g.Kind, g.StatusCode, w.name, w.parent, w.start, w.end, w.kind, w.status)
	}
	for k, v := range map[string]any{event.AttrFromState: w.from, event.AttrToState: w.to, event.AttrSeq: w.seq,
		event.AttrAttempt: w.attempt, event.AttrSpanRole: w.role} {
		if g.Attrs[k] != v {
			t.Errorf("span seq %d role %s: %s = %v (%T), want %v", w.seq, w.role, k, g.Attrs[k], g.Attrs[k], v)
		}
	}
}

// A transition whose predecessor the plugin never saw (it restarted) is a
// zero-length span at the transition; the root span of an event whose start
// is unknown is zero-length at the terminal transition. IDs do not change.
func TestUnknownPredecessorIsZeroLength(t *testing.T) {
	r := otlptest.Start(t)
	id := "req-restart"
	ts := lifecycle(id)
	s1 := newSink(t, grpcConfig(r))
	submit(t, s1, ts[:3])
	s2 := newSink(t, grpcConfig(r)) // a fresh plugin process
	submit(t, s2, ts[3:])
	got := r.Spans()
	traceID := TraceID(id).String()
	if len(got) != 6 {
		t.Fatalf("got %d spans, want 6", len(got))
	}
	g := got[traceID+"/"+TransitionSpanID(id, 4).String()]
	checkSpan(t, g, wantSpan{"RETRYING", TransitionSpanID(id, 4).String(), EventSpanID(id).String(), t0 + 1_050_000_000, t0 + 1_050_000_000,
		"RETRYING", "RUNNING", 4, 2, event.RoleTransition, ptrace.SpanKindInternal, ptrace.StatusCodeUnset})
	g = got[traceID+"/"+TransitionSpanID(id, 5).String()]
	if g.Start != t0+1_050_000_000 {
		t.Errorf("seq 5 start %d: the new process saw seq 4", g.Start)
	}
	root := got[traceID+"/"+EventSpanID(id).String()]
	if root.Start != root.End || root.End != t0+1_090_000_000 {
		t.Errorf("root span [%d, %d], want zero length at the terminal transition", root.Start, root.End)
	}
}

// A re-sent batch produces the same spans (same IDs, same content).
func TestResendIsIdempotent(t *testing.T) {
	r := otlptest.Start(t)
	s := newSink(t, grpcConfig(r))
	ts := lifecycle("req-dup")
	submit(t, s, ts[:2])
	submit(t, s, ts[2:])
	submit(t, s, ts[2:]) // the host re-sends a batch whose ack was lost
	if n := len(r.Spans()); n != 6 {
		t.Fatalf("distinct spans %d, want 6", n)
	}
	if r.Received() != 6+4 {
		t.Fatalf("received %d, want 10", r.Received())
	}
	if d := r.DuplicatesThatDiffered(); len(d) != 0 {
		t.Fatalf("re-sent spans differ: %v", d)
	}
}

func TestTraceparentJoinsCallerTrace(t *testing.T) {
	r := otlptest.Start(t)
	s := newSink(t, grpcConfig(r))
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ts := lifecycle("req-traced")
	for i := range ts {
		ts[i].TraceParent = "00-" + callerTrace + "-" + callerSpan + "-01"
	}
	submit(t, s, ts)
	got := r.Spans()
	root, ok := got[callerTrace+"/"+EventSpanID("req-traced").String()]
	if !ok {
		t.Fatalf("root span not in the caller's trace: %v", got)
	}
	if root.ParentSpanID != callerSpan {
		t.Errorf("root parent %q, want caller span %s", root.ParentSpanID, callerSpan)
	}
	for _, sp := range got {
		if sp.TraceID != callerTrace {
			t.Errorf("span %s in trace %s", sp.Name, sp.TraceID)
		}
	}
}

func TestInvalidTransitionsRejected(t *testing.T) {
	r := otlptest.Start(t)
	s := newSink(t, grpcConfig(r))
	good := lifecycle("req-good")[0]
	bad := []event.Transition{good, good, good, good, good, good}
	bad[0].RequestID = ""
	bad[1].To = event.State(42)
	bad[2].Function = strings.Repeat("f", event.MaxKeyBytes+1)
	bad[3].TimeUnixNano = 0
	bad[4].From = event.StateFinished
	bad[5].ErrorMessage = strings.Repeat("é", event.MaxErrorMessageBytes) // too long: cut, not rejected
	res := submit(t, s, bad)
	if res.err != nil || res.rejected != 5 {
		t.Fatalf("rejected %d err %v, want 5 rejected", res.rejected, res.err)
	}
	got := r.Spans()
	if len(got) != 1 {
		t.Fatalf("got %d spans, want 1", len(got))
	}
	for _, sp := range got {
		msg := sp.Attrs[event.AttrErrorMsg].(string)
		if len(msg) > event.MaxErrorMessageBytes || !strings.HasPrefix(msg, "é") || strings.ContainsRune(msg, '\uFFFD') {
			t.Errorf("error message not cut cleanly: %d bytes", len(msg))
		}
	}
}

func TestHTTPProtocol(t *testing.T) {
	r := otlptest.Start(t)
	s := newSink(t, map[string]string{plugin.KeyProtocol: plugin.ProtocolHTTP, plugin.KeyEndpoint: r.HTTPURL})
	if res := submit(t, s, lifecycle("req-http")); res.err != nil {
		t.Fatal(res.err)
	}
	if n := len(r.Spans()); n != 6 {
		t.Fatalf("got %d spans over OTLP/HTTP, want 6", n)
	}
}

// A batch is acknowledged once spooled; a failing export is retried from
// the spool until the receiver takes it, and counted.
func TestExportFailureIsRetriedFromTheSpool(t *testing.T) {
	r := otlptest.Start(t)
	s := newSink(t, grpcConfig(r))
	r.FailNext(3)
	if res := submit(t, s, lifecycle("req-fail")); res.err != nil {
		t.Fatalf("spooled batch not acknowledged: %v", res.err)
	}
	if n := len(r.Spans()); n != 6 {
		t.Fatalf("got %d spans, want 6", n)
	}
	if st := s.Stats(); st.ExportFailures != 3 || st.Exported != 5 || st.Spooled != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// A request the receiver refuses as malformed is never retried as is: it is
// split until the refused transition stands alone, which is dropped and
// counted; every other transition of the batch arrives.
func TestRefusedRequestIsSplitAndOnlyTheBadTransitionDropped(t *testing.T) {
	for _, proto := range []string{plugin.ProtocolGRPC, plugin.ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			r := otlptest.Start(t)
			r.RefuseIf(func(sp otlptest.Span) bool { return sp.Attrs[event.AttrRequestID] == "req-poison-07" })
			cfg := grpcConfig(r)
			if proto == plugin.ProtocolHTTP {
				cfg = map[string]string{plugin.KeyProtocol: plugin.ProtocolHTTP, plugin.KeyEndpoint: r.HTTPURL}
			}
			s := newSink(t, cfg)
			var batch []event.Transition
			for i := range 20 {
				batch = append(batch, lifecycle(fmt.Sprintf("req-poison-%02d", i))...)
			}
			if res := submit(t, s, batch); res.err != nil {
				t.Fatal(res.err)
			}
			st := s.Stats()
			// All five transitions of req-poison-07 are refused (each carries its request ID).
			if st.DroppedRefused != 5 || st.Exported != 95 {
				t.Fatalf("stats %+v, want 5 refused and 95 exported", st)
			}
			if n := len(r.Spans()); n != 19*6 {
				t.Fatalf("got %d spans, want %d", n, 19*6)
			}
		})
	}
}

// A full spool acknowledges and drops what does not fit (counted), keeps
// what it has, and sends that once the receiver is back.
func TestFullSpoolDropsNewAndKeepsOld(t *testing.T) {
	r := otlptest.Start(t)
	r.Down()
	cfg := grpcConfig(r)
	cfg[plugin.KeySpoolMaxBytes] = "1MiB"
	s := newSink(t, cfg)
	long := strings.Repeat("x", 2000) // about 2 kB per transition in the spool
	sent := 0
	for i := 0; s.Stats().DroppedSpoolFull == 0 && i < 10_000; i++ {
		batch := lifecycle(fmt.Sprintf("req-full-%04d", i))
		for j := range batch {
			batch[j].ErrorMessage = long
		}
		ch := make(chan result, 1)
		s.Submit(context.Background(), batch, func(rej int, err error) { ch <- result{rej, err} })
		if res := <-ch; res.err != nil {
			t.Fatalf("batch %d: %v", i, res.err)
		}
		sent++
	}
	st := s.Stats()
	if st.DroppedSpoolFull == 0 || st.Spooled+st.DroppedSpoolFull != uint64(sent*5) || st.SpoolBytes > 1<<20 {
		t.Fatalf("stats %+v after %d batches", st, sent)
	}
	if err := r.Up(); err != nil {
		t.Fatal(err)
	}
	waitExported(t, s)
	st = s.Stats()
	if st.Exported != st.Spooled || r.Received() != len(r.Spans()) {
		t.Fatalf("stats %+v, %d spans received, %d distinct", st, r.Received(), len(r.Spans()))
	}
	// The oldest (spooled) events arrived whole, the dropped ones not at all.
	kept := int(st.Spooled / 5)
	if len(r.Spans()) != kept*6 {
		t.Fatalf("%d spans for %d kept events", len(r.Spans()), kept)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, m := range map[string]map[string]string{
		"unknown key": {"otlp.endpiont": "x:4317"},
		"protocol":    {plugin.KeyProtocol: "thrift"},
		"insecure":    {plugin.KeyInsecure: "maybe"},
		"headers":     {plugin.KeyHeaders: "novalue"},
		"workers":     {plugin.KeyExportWorkers: "0"},
		"cert alone":  {plugin.KeyCertFile: "/tmp/c.pem"},
		"timeout":     {plugin.KeyTimeout: "soon"},
		"spool size":  {plugin.KeySpoolMaxBytes: "lots"},
		"tiny spool":  {plugin.KeySpoolMaxBytes: "64KiB"},
		"spool dir":   {plugin.KeySpoolDir: ""},
		"drain":       {plugin.KeyDrainTimeout: "-1s"},
	} {
		if _, err := ParseConfig(m); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c, err := ParseConfig(map[string]string{plugin.KeyHeaders: "authorization=Bearer x, x-tenant=a", plugin.KeyExportWorkers: "4", plugin.KeySpoolMaxBytes: "512MiB"})
	if err != nil || c.Headers["authorization"] != "Bearer x" || c.Headers["x-tenant"] != "a" || c.ExportWorkers != 4 ||
		c.SpoolMaxBytes != 512<<20 || c.SpoolDir != plugin.DefaultSpoolDir || c.DrainTimeout != 5*time.Second {
		t.Fatalf("parse: %+v %v", c, err)
	}
}

func TestNotConfiguredNacks(t *testing.T) {
	s := NewSink(nil)
	if res := submit(t, s, lifecycle("req-x")); res.err == nil {
		t.Fatal("unconfigured sink acknowledged a batch")
	}
}
