package statustraceexporter

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/freeport"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/plugin"
	"github.com/statustrace/statustrace/plugin/spans"
)

// The producer and this consumer agree on the span contract: transitions
// sent by the real plugin code (plugin/spans over OTLP) reach the views as
// they were reported.
func TestPluginSpansThroughCollector(t *testing.T) {
	db := newDB(t)
	otlp := freeport.Addr(t)
	runCollector(t, collectorOpts{otlpAddr: otlp, endpoint: db.DSN, database: db.Name, queueDir: t.TempDir()}, testCompression)

	sink := spans.NewSink(nil)
	ctx := context.Background()
	if err := sink.Configure(ctx, map[string]string{plugin.KeyEndpoint: otlp, plugin.KeyInsecure: "true"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Shutdown(context.Background()) })

	rng := rand.New(rand.NewPCG(21, 22))
	ts := genEvents(rng, 40, time.Now().Add(-time.Hour), 30*time.Minute)
	batch := make([]event.Transition, len(ts))
	for i, tr := range ts {
		batch[i] = tr.Transition
	}
	done := make(chan error, 1)
	sink.Submit(ctx, batch, func(rejected int, err error) {
		if err == nil && rejected > 0 {
			t.Errorf("plugin rejected %d valid transitions", rejected)
		}
		done <- err
	})
	if err := <-done; err != nil {
		t.Fatalf("plugin export: %v", err)
	}
	waitRows(t, db, uint64(len(ts)), 2*time.Minute)

	// The plugin derives its own trace IDs: compare everything else.
	want := expectEvents(ts)
	got := selectEvents(t, db, eventsQuery, "events")
	for i := range want {
		want[i].TraceID = ""
	}
	for i := range got {
		if got[i].TraceID == "" || got[i].TraceID == "00000000000000000000000000000000" {
			t.Errorf("event %s has no trace id", got[i].RequestID)
		}
		got[i].TraceID = ""
	}
	diffEvents(t, "events from plugin spans", got, want)
	diffStats(t, "stats from plugin spans", selectStats(t, db, statsQuery, schema.Stats), expectStats(ts))
}
