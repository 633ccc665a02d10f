package capacity

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fixture(t *testing.T) (Figures, Settings) {
	t.Helper()
	f, err := Load(filepath.Join("testdata", "bench"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadSettings(filepath.Join("testdata", "collector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return f, s
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestParse(t *testing.T) {
	f, _ := fixture(t)
	// The later exporter_figures line wins; words are skipped; sources name
	// file and line.
	near(t, "status bytes", f["exporter_figures.status_bytes_per_transition"].Value, 30)
	if src := f["exporter_figures.status_bytes_per_transition"].Source; src != filepath.Join("testdata", "bench", "exporter.txt")+":4" {
		t.Errorf("source %q", src)
	}
	if _, ok := f["exporter_figures.note"]; ok {
		t.Error("a non-numeric value was kept")
	}
	if _, ok := f["host_to_otlp.receiver"]; ok {
		t.Error("a non-numeric value was kept")
	}
	near(t, "ratio", f["exporter_vs_contrib.cpu_ratio"].Value, 0.5)
}

func TestMissingFigures(t *testing.T) {
	f, s := fixture(t)
	delete(f, "host_to_otlp.cpu_us_per_transition")
	_, err := Model(f, s, Input{Rate: 1000})
	if err == nil || !strings.Contains(err.Error(), "host_to_otlp.cpu_us_per_transition (make bench-plugin)") {
		t.Errorf("error %v: want the missing figure and the target that measures it", err)
	}
	if _, err := Model(Figures{}, s, Input{Rate: -1}); err == nil {
		t.Error("a negative rate: no error")
	}
}

// TestModelArithmetic checks every figure against the fixture worked by
// hand: 4 transitions per event (1.25 otel_traces spans per transition),
// 30 + 80×1.25 = 130 bytes per transition, 2 cores.
func TestModelArithmetic(t *testing.T) {
	f, s := fixture(t)
	r, err := Model(f, s, Input{Rate: 1000, Days: 3})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "status bytes", r.StatusBytes, 30)
	near(t, "trace bytes", r.TraceBytes, 100)
	near(t, "storage per replica", r.StoragePerRepl, 1000*86400*4*130.0)
	near(t, "storage total", r.StorageTotal, 2*1000*86400*4*130.0)
	// inserts: 1000/(40000/2) + 1250/(20000/2)
	near(t, "insert cores", r.InsertCores, 0.05+0.125)
	// exporter 5 + contrib 10×1.25 + OTLP decode (3-1) µs per transition
	near(t, "collector cores per 1k/s", r.CollectorCores, 19.5e-3)
	near(t, "plugin cores per 1k/s", r.PluginCores, 1e-3)
	if r.Collectors != 2 || r.Shards != 1 {
		t.Errorf("collectors %d shards %d, want 2 and 1", r.Collectors, r.Shards)
	}
	// Shipped: 500 transitions/s per collector, 100 per 200 ms flush: 5
	// inserts/s each, 10 per shard table; otel_traces: 625 spans/s per
	// collector, flushed each second, async by default (200 ms buffer).
	want := map[string][3]float64{ // inserts/s, parts/s, rows/insert
		"transitions":                    {10, 10, 100},
		"events (view)":                  {10, 10, 100},
		"otel_traces":                    {2, 2, 625},
		"otel_traces_trace_id_ts (view)": {2, 2, 625},
	}
	for _, l := range r.Shipped {
		if w, ok := want[l.Table]; ok {
			near(t, l.Table+" inserts/s", l.InsertsPerSec, w[0])
			near(t, l.Table+" parts/s", l.PartsPerSec, w[1])
			near(t, l.Table+" rows/insert", l.RowsPerInsert, w[2])
		}
		if l.WithinGuidance {
			t.Errorf("shipped %s within guidance at %v inserts/s", l.Table, l.InsertsPerSec)
		}
	}
	// Recommended within the 1 s freshness target: the collector may flush
	// every 1000 - 200 (plugin) - 400 (allowance) = 400 ms, synchronously
	// (2 collectors / 0.4 s = 5 inserts/s per table per shard, against 10
	// parts/s from 2 servers' async buffers flushed every 200 ms);
	// otel_traces async, flushed each second.
	rec := map[string][3]float64{
		"transitions": {5, 5, 200},
		"otel_traces": {2, 2, 625},
	}
	for _, l := range r.Recommended {
		if w, ok := rec[l.Table]; ok {
			near(t, "recommended "+l.Table+" inserts/s", l.InsertsPerSec, w[0])
			near(t, "recommended "+l.Table+" parts/s", l.PartsPerSec, w[1])
			near(t, "recommended "+l.Table+" rows/insert", l.RowsPerInsert, w[2])
		}
		if want := strings.HasPrefix(l.Table, "otel_traces"); l.WithinGuidance != want {
			t.Errorf("recommended %s within guidance: %v, want %v", l.Table, l.WithinGuidance, want)
		}
	}
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"otel_traces", "async_insert_busy_timeout_max_ms: 1000", "testdata/bench/exporter.txt:4", "not measured", "flush_timeout 400ms", "cannot both hold"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("report lacks %q:\n%s", w, b.String())
		}
	}
}

// TestSingleCollectorSync: with a 2 s freshness target one collector may
// insert synchronously once a second with every row of that second.
func TestSingleCollectorSync(t *testing.T) {
	f, s := fixture(t)
	r, err := Model(f, s, Input{Rate: 5000, Collectors: 1, Shards: 1, Freshness: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := r.Recommended[0]
	near(t, "inserts/s", st.InsertsPerSec, 1)
	near(t, "rows/insert", st.RowsPerInsert, 5000)
	if !st.WithinGuidance {
		t.Errorf("not within guidance: %+v", st)
	}
}

func TestBatches(t *testing.T) {
	b := Batching{Flush: 200 * time.Millisecond, MinSize: 2000}
	near(t, "timer-bound", b.batches(1000), 5)
	near(t, "size-bound", b.batches(100000), 50)
	near(t, "idle", b.batches(0), 0)
}

// TestShippedConfigsFollowTheModel: the shipped collector settings are the
// ones the model recommends at the rates deploy/README.md lists (the
// Kubernetes tier, and the single collector of compose and the demo), and
// never insert more often than the model's recommendation.
func TestShippedConfigsFollowTheModel(t *testing.T) {
	f, _ := fixture(t)
	for _, c := range []struct {
		path       string
		collectors int
	}{
		{filepath.Join("..", "kubernetes", "collector", "collector.yaml"), 0},
		{filepath.Join("..", "..", "collector", "config.yaml"), 1},
	} {
		s, err := ReadSettings(c.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, rate := range []float64{1000, 10000, 100000} {
			r, err := Model(f, s, Input{Rate: rate, Collectors: c.collectors})
			if err != nil {
				t.Fatal(err)
			}
			st, tr, _ := r.recommend(s)
			if got, want := s.Status, st; got.Flush != want.Flush || got.MinSize != want.MinSize || got.MaxSize != want.MaxSize || got.AsyncInsert != want.AsyncInsert {
				t.Errorf("%s at %.0f/s: statustrace batching %+v, the model recommends %+v", c.path, rate, got, want)
			}
			if !s.Traces.AsyncInsert || s.Traces.AsyncFlush != tr.AsyncFlush {
				t.Errorf("%s at %.0f/s: clickhouse exporter async %v flush %s, the model recommends async, %s", c.path, rate, s.Traces.AsyncInsert, s.Traces.AsyncFlush, tr.AsyncFlush)
			}
			for i, l := range r.Shipped {
				if l.PartsPerSec > r.Recommended[i].PartsPerSec+1e-9 {
					t.Errorf("%s at %.0f/s: %s %.2f parts/s, more than the recommended %.2f", c.path, rate, l.Table, l.PartsPerSec, r.Recommended[i].PartsPerSec)
				}
			}
		}
	}
}
