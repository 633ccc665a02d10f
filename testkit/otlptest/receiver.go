// Package otlptest is a real OTLP trace receiver (gRPC and HTTP) on a
// loopback port for the plugin's tests and benchmarks. It decodes every
// request with the collector's pdata and records the spans by ID.
package otlptest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Span is one received span, flattened.
type Span struct {
	TraceID, SpanID, ParentSpanID string // hex
	Name                          string
	Kind                          ptrace.SpanKind
	Start, End                    int64
	StatusCode                    ptrace.StatusCode
	StatusMessage                 string
	Attrs                         map[string]any
	Scope                         string
	Resource                      map[string]any
}

// Key identifies a span.
func (s Span) Key() string { return s.TraceID + "/" + s.SpanID }

// Receiver records spans. Duplicates (same trace and span ID) are kept once
// in Spans and counted in Received.
type Receiver struct {
	ptraceotlp.UnimplementedGRPCServer
	GRPCAddr string // host:port of the OTLP/gRPC endpoint
	HTTPURL  string // http://host:port/v1/traces

	mu        sync.Mutex
	gs        *grpc.Server // nil while Down
	hs        *http.Server
	accepted  []time.Time // when each request was recorded
	spans     map[string]Span
	dupDiffer []string // keys whose duplicate differed from the first copy
	received  int
	requests  int
	gate      chan struct{}   // non-nil: Export waits for it to close
	failNext  int             // Export answers Unavailable this many times
	refuse    func(Span) bool // a request with a matching span is refused as malformed
	changed   chan struct{}
	counting  bool // only count spans, keep nothing (benchmarks)
}

// Start serves OTLP/gRPC and OTLP/HTTP on loopback ports until the test ends.
func Start(tb testing.TB) *Receiver {
	tb.Helper()
	r := &Receiver{spans: map[string]Span{}, changed: make(chan struct{})}
	if err := r.serve("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		tb.Fatalf("otlptest: %v", err)
	}
	tb.Cleanup(func() {
		r.Release()
		r.Down()
	})
	return r
}

func (r *Receiver) serve(grpcAddr, httpAddr string) error {
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		gl.Close()
		return fmt.Errorf("listen: %w", err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	ptraceotlp.RegisterGRPCServer(gs, r)
	go func() { _ = gs.Serve(gl) }()
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/traces", r.serveHTTP)
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(hl) }()
	r.mu.Lock()
	r.gs, r.hs = gs, hs
	r.GRPCAddr = gl.Addr().String()
	r.HTTPURL = "http://" + hl.Addr().String() + "/v1/traces"
	r.mu.Unlock()
	return nil
}

// Down stops serving: both ports refuse connections (as a collector that
// stopped), what was received is kept.
func (r *Receiver) Down() {
	r.mu.Lock()
	gs, hs := r.gs, r.hs
	r.gs, r.hs = nil, nil
	r.mu.Unlock()
	if gs != nil {
		gs.Stop()
		_ = hs.Close()
	}
}

// Up serves again on the same ports after Down.
func (r *Receiver) Up() error {
	r.mu.Lock()
	grpcAddr, httpAddr := r.GRPCAddr, strings.TrimSuffix(strings.TrimPrefix(r.HTTPURL, "http://"), "/v1/traces")
	r.mu.Unlock()
	return r.serve(grpcAddr, httpAddr)
}

// FirstAcceptedAfter is when the first request after t was recorded.
func (r *Receiver) FirstAcceptedAfter(t time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, at := range r.accepted {
		if !at.Before(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

// CountOnly makes the receiver decode and count spans without keeping them.
func (r *Receiver) CountOnly() {
	r.mu.Lock()
	r.counting = true
	r.mu.Unlock()
}

// Stall makes every Export wait until Release.
func (r *Receiver) Stall() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate == nil {
		r.gate = make(chan struct{})
	}
}

// Release lets stalled Exports go on.
func (r *Receiver) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate != nil {
		close(r.gate)
		r.gate = nil
	}
}

// FailNext makes the next n Exports fail with a retryable error.
func (r *Receiver) FailNext(n int) {
	r.mu.Lock()
	r.failNext = n
	r.mu.Unlock()
}

// RefuseIf makes the receiver refuse, as malformed (gRPC InvalidArgument,
// HTTP 400), every request holding a span for which refuse is true.
func (r *Receiver) RefuseIf(refuse func(Span) bool) {
	r.mu.Lock()
	r.refuse = refuse
	r.mu.Unlock()
}

func (r *Receiver) refused(td ptrace.Traces) bool {
	r.mu.Lock()
	refuse := r.refuse
	r.mu.Unlock()
	if refuse == nil {
		return false
	}
	for _, s := range flatten(td) {
		if refuse(s) {
			return true
		}
	}
	return false
}

// Export implements the OTLP/gRPC trace service.
func (r *Receiver) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	if err := r.wait(ctx); err != nil {
		return ptraceotlp.NewExportResponse(), err
	}
	if r.refused(req.Traces()) {
		return ptraceotlp.NewExportResponse(), status.Error(codes.InvalidArgument, "otlptest: refused span")
	}
	r.record(req.Traces())
	return ptraceotlp.NewExportResponse(), nil
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, hr *http.Request) {
	body, err := io.ReadAll(hr.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := r.wait(hr.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if r.refused(req.Traces()) {
		http.Error(w, "otlptest: refused span", http.StatusBadRequest)
		return
	}
	r.record(req.Traces())
	out, _ := ptraceotlp.NewExportResponse().MarshalProto()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *Receiver) wait(ctx context.Context) error {
	r.mu.Lock()
	gate := r.gate
	fail := r.failNext > 0
	if fail {
		r.failNext--
	}
	r.mu.Unlock()
	if fail {
		return status.Error(codes.Unavailable, "otlptest: failing on request")
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *Receiver) record(td ptrace.Traces) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.accepted = append(r.accepted, time.Now())
	if r.counting {
		r.received += td.SpanCount()
		r.signal()
		return
	}
	for _, s := range flatten(td) {
		r.received++
		if old, ok := r.spans[s.Key()]; ok {
			if !sameSpan(old, s) {
				r.dupDiffer = append(r.dupDiffer, s.Key())
			}
			continue
		}
		r.spans[s.Key()] = s
	}
	r.signal()
}

// flatten lists the spans of a request.
func flatten(td ptrace.Traces) []Span {
	var out []Span
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes().AsRaw()
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				out = append(out, Span{
					TraceID:       sp.TraceID().String(),
					SpanID:        sp.SpanID().String(),
					ParentSpanID:  spanIDString(sp.ParentSpanID()),
					Name:          sp.Name(),
					Kind:          sp.Kind(),
					Start:         int64(sp.StartTimestamp()),
					End:           int64(sp.EndTimestamp()),
					StatusCode:    sp.Status().Code(),
					StatusMessage: sp.Status().Message(),
					Attrs:         sp.Attributes().AsRaw(),
					Scope:         ss.Scope().Name(),
					Resource:      res,
				})
			}
		}
	}
	return out
}

func spanIDString(id pcommon.SpanID) string {
	if id.IsEmpty() {
		return ""
	}
	return id.String()
}

// sameSpan compares what a re-sent transition must reproduce. The start of
// an interval span may differ after a plugin restart (the plugin forgot the
// previous transition), so it is not compared.
func sameSpan(a, b Span) bool {
	if a.Name != b.Name || a.ParentSpanID != b.ParentSpanID || a.End != b.End || len(a.Attrs) != len(b.Attrs) {
		return false
	}
	for k, v := range a.Attrs {
		if b.Attrs[k] != v {
			return false
		}
	}
	return true
}

func (r *Receiver) signal() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Spans returns the distinct spans received so far.
func (r *Receiver) Spans() map[string]Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]Span, len(r.spans))
	for k, v := range r.spans {
		out[k] = v
	}
	return out
}

// Received is the number of spans received, duplicates included.
func (r *Receiver) Received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received
}

// Requests is the number of export requests recorded.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// DuplicatesThatDiffered lists span keys received twice with different content.
func (r *Receiver) DuplicatesThatDiffered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.dupDiffer...)
}

// WaitFor blocks until cond holds (checked after every request) or ctx ends.
func (r *Receiver) WaitFor(ctx context.Context, cond func(r *Receiver) bool) bool {
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond(r) {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return cond(r)
		}
	}
}
