package spans

import (
	"context"
	"github.com/statustrace/statustrace/plugin"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/testkit/otlptest"
)

// BenchmarkBuild is the span mapping alone (no export, no marshalling), per
// transition: tracking the starts, the spool record round trip, the spans.
func BenchmarkBuild(b *testing.B) {
	bld, k := newBuilder(pcommon.NewResource()), newTracker(100_000)
	ts := benchTransitions(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	st := make([]staged, 0, 512)
	for i := 0; i < len(ts); i += 512 {
		st = st[:0]
		for j := i; j < min(i+512, len(ts)); j++ {
			start, eventStart := k.track(&ts[j])
			st = append(st, staged{t: ts[j], start: start, eventStart: eventStart})
		}
		recs, err := decodeRecord(encodeRecord(nil, st))
		if err != nil {
			b.Fatal(err)
		}
		_, spans := bld.newBatch(len(recs))
		for j := range recs {
			bld.emit(spans, &recs[j])
		}
	}
}

// BenchmarkSubmit is a Sink end to end, per transition, in batches of 512:
// spooled (fsynced) and acknowledged, then exported over OTLP/gRPC to a
// loopback receiver that counts the spans.
func BenchmarkSubmit(b *testing.B) {
	r := otlptest.Start(b)
	r.CountOnly()
	s := NewSink(nil)
	if err := s.Configure(context.Background(), map[string]string{plugin.KeyEndpoint: r.GRPCAddr, plugin.KeyInsecure: "true", plugin.KeySpoolDir: b.TempDir()}); err != nil {
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
	for deadline := time.Now().Add(time.Minute); s.Stats().Exported < uint64(len(ts)); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("exported %d of %d", s.Stats().Exported, len(ts))
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
