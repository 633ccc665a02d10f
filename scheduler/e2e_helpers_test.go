package scheduler_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/plugin"
	"github.com/statustrace/statustrace/plugin/host"
)

var (
	pluginOnce sync.Once
	pluginBin  string
	pluginErr  error
)

// pluginBinary builds the real plugin once per test binary.
func pluginBinary(t testing.TB) string {
	t.Helper()
	pluginOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scheduler-plugin-")
		if err != nil {
			pluginErr = err
			return
		}
		pluginBin = filepath.Join(dir, "statustrace-plugin")
		out, err := exec.Command("go", "build", "-o", pluginBin, "github.com/statustrace/statustrace/cmd/statustrace-plugin").CombinedOutput()
		if err != nil {
			pluginErr = &buildError{err: err, out: string(out)}
		}
	})
	require.NoError(t, pluginErr)
	return pluginBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "build plugin: " + e.err.Error() + "\n" + e.out }

// receiver is a real OTLP/gRPC trace endpoint on loopback that turns the
// plugin's transition spans back into transitions.
type receiver struct {
	ptraceotlp.UnimplementedGRPCServer
	addr string

	// countOnly keeps no spans, only counts them (benchmarks).
	countOnly bool
	counted   atomic.Int64

	mu       sync.Mutex
	byEvent  map[string]map[uint64]rxSpan // request ID -> seq -> span
	roots    map[string]rxSpan            // request ID -> event root span
	requests int
}

type rxSpan struct {
	step
	TraceID string
	Node    string
}

func startReceiver(t testing.TB) *receiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &receiver{addr: l.Addr().String(), byEvent: map[string]map[uint64]rxSpan{}, roots: map[string]rxSpan{}}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, r)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return r
}

func (r *receiver) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	if r.countOnly {
		r.counted.Add(int64(req.Traces().SpanCount()))
		return ptraceotlp.NewExportResponse(), nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	rss := req.Traces().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			if sss.At(j).Scope().Name() != event.ScopeName {
				continue
			}
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				a := sp.Attributes()
				str := func(key string) string {
					if v, ok := a.Get(key); ok {
						return v.AsString()
					}
					return ""
				}
				num := func(key string) int64 {
					if v, ok := a.Get(key); ok {
						return v.Int()
					}
					return -1
				}
				from, _ := event.ParseState(str(event.AttrFromState))
				to, _ := event.ParseState(str(event.AttrToState))
				s := rxSpan{
					step:    step{From: from, To: to, Seq: uint64(num(event.AttrSeq)), Attempt: uint32(num(event.AttrAttempt))},
					TraceID: sp.TraceID().String(),
					Node:    str(event.AttrNode),
				}
				rid := str(event.AttrRequestID)
				if str(event.AttrSpanRole) == event.RoleEvent {
					r.roots[rid] = s
					continue
				}
				if r.byEvent[rid] == nil {
					r.byEvent[rid] = map[uint64]rxSpan{}
				}
				r.byEvent[rid][s.Seq] = s // a re-sent transition is the same span
			}
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}

// spans returns an event's transition spans in seq order.
func (r *receiver) spans(requestID string) []rxSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]rxSpan, 0, len(r.byEvent[requestID]))
	for _, s := range r.byEvent[requestID] {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

func (r *receiver) steps(requestID string) []step {
	ss := r.spans(requestID)
	out := make([]step, len(ss))
	for i, s := range ss {
		out[i] = s.step
	}
	return out
}

func (r *receiver) root(requestID string) (rxSpan, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.roots[requestID]
	return s, ok
}

// waitLife waits until the receiver has the event's root span (sent at its
// terminal transition) and every transition up to it.
func (r *receiver) waitLife(t *testing.T, requestID string, want []step) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, ok := r.root(requestID)
		return ok && len(r.steps(requestID)) >= len(want)
	}, 60*time.Second, 10*time.Millisecond, "receiver never got the whole life of %s: %v", requestID, r.steps(requestID))
	require.Equal(t, want, r.steps(requestID), "life of %s", requestID)
}

// startReporter launches the real plugin through plugin/host, exporting to rx.
// flush is the host's flush interval; 0: its default.
func startReporter(t testing.TB, rx *receiver, flush time.Duration) *host.Reporter {
	t.Helper()
	rep, err := host.Start(context.Background(), host.Config{
		PluginPath: pluginBinary(t),
		PluginConfig: map[string]string{
			plugin.KeyEndpoint:    rx.addr,
			plugin.KeyInsecure:    "true",
			plugin.KeyServiceName: "scheduler-test",
			plugin.KeyTimeout:     "5s",
			plugin.KeySpoolDir:    t.TempDir(), // the default, in the working directory, is shared by every test
		},

		FlushInterval: flush,
		MaxBackoff:    200 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		// Short: with a dead collector, Close waits this long for acks.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = rep.Close(ctx)
	})
	return rep
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginBin != "" {
		_ = os.RemoveAll(filepath.Dir(pluginBin))
	}
	os.Exit(code)
}
