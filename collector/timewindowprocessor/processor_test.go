package timewindowprocessor

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func span(ss ptrace.ScopeSpans, name string, start, end time.Time) {
	sp := ss.Spans().AppendEmpty()
	sp.SetName(name)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
}

func TestDropsWhatTheTablesWouldNotKeep(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := processortest.NewNopSettings(Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := new(consumertest.TracesSink)
	cfg := NewFactory().CreateDefaultConfig()
	p, err := NewFactory().CreateTraces(context.Background(), set, cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	span(ss, "fresh", now.Add(-time.Minute), now)
	span(ss, "long-but-kept", now.Add(-70*time.Hour), now)
	for d := 4; d <= 104; d++ { // the poison request: spans on 101 days
		span(ss, "old", now.Add(-time.Duration(d)*24*time.Hour), now.Add(-time.Duration(d)*24*time.Hour))
	}
	span(ss, "next-year", now.AddDate(1, 0, 0), now.AddDate(1, 0, 0))
	span(ss, "ends-in-2200", now, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC))
	allOld := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	span(allOld, "old", now.AddDate(0, 0, -30), now.AddDate(0, 0, -30))

	if err := p.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	got := sink.AllTraces()
	if len(got) != 1 || got[0].SpanCount() != 2 || got[0].ResourceSpans().Len() != 1 {
		t.Fatalf("passed on %d payloads", len(got))
	}
	var names []string
	spans := got[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := range spans.Len() {
		names = append(names, spans.At(i).Name())
	}
	if strings.Join(names, ",") != "fresh,long-but-kept" {
		t.Errorf("kept %v", names)
	}
	m, err := tel.GetMetric("statustrace_timewindow_spans_dropped")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		r, _ := dp.Attributes.Value("reason")
		counts[r.AsString()] += dp.Value
	}
	if counts["expired"] != 102 || counts["bad_timestamp"] != 2 {
		t.Errorf("dropped %v", counts)
	}

	// A payload with nothing left is not passed on at all.
	td = ptrace.NewTraces()
	span(td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty(), "old", now.AddDate(0, 0, -5), now.AddDate(0, 0, -5))
	if err := p.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	if len(sink.AllTraces()) != 1 {
		t.Error("an emptied payload was passed on")
	}
}

func TestConfig(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]any{{"retention": "0s"}, {"max_future_skew": "0s"}, {"max_future_skew": "192h"}} {
		c := NewFactory().CreateDefaultConfig().(*Config)
		if err := confmap.NewFromStringMap(bad).Unmarshal(c); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil {
			t.Errorf("%v: want an error", bad)
		}
	}
}
