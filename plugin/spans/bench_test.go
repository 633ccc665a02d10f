package spans

import (
	"context"
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/statustrace/statustrace/plugin/event"
	"github.com/statustrace/statustrace/plugin/internal/otlptest"
)

// BenchmarkBuild is the span mapping alone (no export, no marshalling), per
// transition.
func BenchmarkBuild(b *testing.B) {
	bld := newBuilder(pcommon.NewResource(), 100_000)
	ts := benchTransitions(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	_, spans := bld.newBatch(512)
	for i := range ts {
		if i%512 == 0 {
			_, spans = bld.newBatch(512)
		}
		bld.build(spans, &ts[i])
	}
}

// BenchmarkSubmit is mapping plus synchronous OTLP/gRPC export to a
// loopback receiver, per transition, in batches of 512.
func BenchmarkSubmit(b *testing.B) {
	r := otlptest.Start(b)
	r.CountOnly()
	s := NewSink(nil)
	if err := s.Configure(context.Background(), map[string]string{KeyEndpoint: r.GRPCAddr, KeyInsecure: "true"}); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Shutdown(context.Background()) }()
	ts := benchTransitions(b.N)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan error, 64)
	n := 0
	for i := 0; i < len(ts); i += 512 {
		s.Submit(ctx, ts[i:min(i+512, len(ts))], func(_ int, err error) { done <- err })
		n++
	}
	for ; n > 0; n-- {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

func benchTransitions(n int) []event.Transition {
	steps := lifecycle("")
	out := make([]event.Transition, n)
	for i := range out {
		t := steps[i%5]
		t.RequestID = "bench-" + strconv.Itoa(i/5)
		out[i] = t
	}
	return out
}
