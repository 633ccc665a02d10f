package capacity

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// ClickHouse's guidance for synchronous inserts: about one insert query per
// second per table, 10,000 to 100,000 rows per insert (more small inserts
// are fine with async inserts, which the server buffers into parts).
const (
	GuidanceInsertsPerSecond = 1.0
	GuidanceMinRows          = 10_000
	GuidanceMaxRows          = 100_000
)

// Input is what the model is asked about. Zero fields take the defaults
// of the shipped Kubernetes manifests (deploy/kubernetes).
type Input struct {
	Rate       float64 // transitions/s
	Days       float64 // retention
	Replicas   int     // per shard (default 2)
	NodeCores  float64 // ClickHouse cores per node (default 2)
	NodeDisk   float64 // ClickHouse data volume per node, GiB (default 200)
	PodCores   float64 // CPU per collector pod (default 1)
	Headroom   float64 // share of CPU and disk kept free (default 0.3: merges, spikes)
	Freshness  time.Duration
	PluginWait time.Duration // the plugin's batch flush (default 200 ms)
	Collectors int           // 0: as many as the CPU needs (at least 2)
	Shards     int           // 0: as many as storage and inserts need
}

func (in Input) withDefaults() Input {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&in.Days, 3)
	def(&in.NodeCores, 2)
	def(&in.NodeDisk, 200)
	def(&in.PodCores, 1)
	def(&in.Headroom, 0.3)
	if in.Replicas == 0 {
		in.Replicas = 2
	}
	if in.Freshness == 0 {
		in.Freshness = time.Second // BenchmarkFreshness's target: p99 <= 1000 ms
	}
	if in.PluginWait == 0 {
		in.PluginWait = 200 * time.Millisecond
	}
	return in
}

// Row is one line of the report: a figure, its unit and where it comes from.
type Row struct {
	What, Value, From string
}

// TableLoad is the insert load on one table of one shard.
type TableLoad struct {
	Table          string
	InsertsPerSec  float64 // insert queries per second
	PartsPerSec    float64 // new parts per second
	RowsPerInsert  float64
	WithinGuidance bool
}

// Report is the model's answer for one Input.
type Report struct {
	In             Input
	Rows           []Row
	StatusBytes    float64 // per transition, status tables
	TraceBytes     float64 // per transition, otel_traces (its spans and the events' root spans)
	StoragePerRepl float64 // bytes per replica (all shards) for the retention
	StorageTotal   float64 // bytes, every replica
	InsertCores    float64 // ClickHouse cores for inserts, whole cluster (per replica set)
	CollectorCores float64 // per 1,000 transitions/s
	PluginCores    float64 // per 1,000 transitions/s
	Collectors     int
	Shards         int
	Shipped        []TableLoad // per table per shard, with the shipped settings
	Recommended    []TableLoad // with the recommended settings
	Advice         []string    // the recommended settings
}

const gib = 1 << 30

// Model computes the report from measured figures and the shipped settings.
func Model(f Figures, s Settings, in Input) (*Report, error) {
	if in.Rate <= 0 || math.IsInf(in.Rate, 0) || math.IsNaN(in.Rate) {
		return nil, fmt.Errorf("rate %v: want transitions per second > 0", in.Rate)
	}
	if in.Days < 0 || in.Replicas < 0 || in.Collectors < 0 || in.Shards < 0 {
		return nil, fmt.Errorf("days, replicas, collectors and shards must not be negative")
	}
	in = in.withDefaults()
	m, err := f.need(
		"exporter_figures.spans", "exporter_figures.events", "exporter_figures.cores",
		"exporter_figures.status_bytes_per_transition", "exporter_figures.otel_traces_bytes_per_span",
		"exporter_figures.exporter_cpu_us_per_span", "exporter_figures.contrib_cpu_us_per_span",
		"exporter_figures.insert_rows_per_s", "exporter_figures.contrib_spans_per_s", "exporter_figures.scan_rows_per_s",
		"host_to_otlp.cpu_us_per_transition", "host_to_otlp_pdata_receiver.cpu_us_per_transition",
	)
	if err != nil {
		return nil, err
	}
	v := func(k string) float64 { return m["exporter_figures."+k].Value }
	src := func(keys ...string) string {
		seen := map[string]bool{}
		var out []string
		for _, k := range keys {
			if !strings.Contains(k, ".") {
				k = "exporter_figures." + k
			}
			if s := m[k].Source; !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
		return strings.Join(out, ", ")
	}
	r := &Report{In: in}
	add := func(what, value, from string) { r.Rows = append(r.Rows, Row{what, value, from}) }

	perEvent := v("spans") / v("events") // transitions per event in the benchmark's workload
	// otel_traces holds every transition span and one root span per event.
	spansPerTransition := 1 + 1/perEvent
	r.StatusBytes = v("status_bytes_per_transition")
	r.TraceBytes = v("otel_traces_bytes_per_span") * spansPerTransition
	add("transitions per event (benchmark workload)", f1(perEvent), src("spans", "events"))
	add("bytes on disk per transition: status tables (transitions + events + transitions_minute)", f1(r.StatusBytes), src("status_bytes_per_transition"))
	add("bytes on disk per transition: otel_traces (+ trace_id_ts; incl. the event's root span)", f1(r.TraceBytes), src("otel_traces_bytes_per_span", "spans", "events"))
	add("bytes on disk per event: status / otel_traces", f0(r.StatusBytes*perEvent)+" / "+f0(r.TraceBytes*perEvent), "the two above × transitions per event")

	// Storage: daily partitions go whole, so a day more than the retention
	// is on disk just before the oldest one is dropped.
	perDay := in.Rate * 86400 * (r.StatusBytes + r.TraceBytes)
	r.StoragePerRepl = perDay * (in.Days + 1)
	r.StorageTotal = r.StoragePerRepl * float64(in.Replicas)
	add(fmt.Sprintf("storage for %g days (+1 day of daily partitions), one replica of every shard", in.Days),
		gibs(r.StoragePerRepl)+fmt.Sprintf(" (status %s, otel_traces %s)", gibs(in.Rate*86400*(in.Days+1)*r.StatusBytes), gibs(in.Rate*86400*(in.Days+1)*r.TraceBytes)), "rate × 86,400 × (days + 1) × bytes per transition")
	add(fmt.Sprintf("storage, %d replicas", in.Replicas), gibs(r.StorageTotal), "× replicas")

	// ClickHouse insert and query cost per core: the benchmark's engine-bound
	// rates divided by the machine's cores (the engine and the client
	// shared them: an upper bound of the engine's cost).
	cores := v("cores")
	insertPerCore := v("insert_rows_per_s") / cores
	tracePerCore := v("contrib_spans_per_s") / cores
	scanPerCore := v("scan_rows_per_s") / cores
	r.InsertCores = in.Rate/insertPerCore + in.Rate*spansPerTransition/tracePerCore
	add("ClickHouse inserts per core: status rows/s (with both views) / otel_traces spans/s", f0(insertPerCore)+" / "+f0(tracePerCore), src("insert_rows_per_s", "contrib_spans_per_s", "cores"))
	add("ClickHouse cores for inserts at this rate (each replica)", f2(r.InsertCores), "rate / the above")
	add("ClickHouse query cost: rows scanned per core-second (GROUP BY over transitions)", f0(scanPerCore), src("scan_rows_per_s", "cores"))
	for _, q := range []struct{ name, key string }{
		{"lookup (one event and its timeline)", "lookup_read_rows.at_1x"},
		{"statistics of a function over the window", "stats_read_rows_function.read"},
		{"statistics of a tenant over the window", "stats_read_rows.read"},
		{"event list page", "list_read_rows.read"},
	} {
		if x, ok := f[q.key]; ok {
			add("query cost: "+q.name, fmt.Sprintf("%.0f rows read, %.2f core-ms", x.Value, x.Value/scanPerCore*1000), x.Source+" (rows read, chdb-wasm's counters) / scan rate")
		} else {
			add("query cost: "+q.name, "not measured", "run make bench-queries-local")
		}
	}

	// Collector and plugin CPU per 1,000 transitions/s.
	recvUs := math.Max(0, m["host_to_otlp_pdata_receiver.cpu_us_per_transition"].Value-m["host_to_otlp.cpu_us_per_transition"].Value)
	collUs := v("exporter_cpu_us_per_span") + v("contrib_cpu_us_per_span")*spansPerTransition + recvUs
	r.CollectorCores = collUs * 1000 / 1e6
	r.PluginCores = m["host_to_otlp.cpu_us_per_transition"].Value * 1000 / 1e6
	add("collector CPU per 1,000 transitions/s (OTLP decode + statustrace + clickhouse exporters)", f3(r.CollectorCores)+" cores",
		src("exporter_cpu_us_per_span", "contrib_cpu_us_per_span", "host_to_otlp_pdata_receiver.cpu_us_per_transition", "host_to_otlp.cpu_us_per_transition"))
	add("plugin CPU per 1,000 transitions/s (scheduler host + plugin, OTLP export)", f3(r.PluginCores)+" cores", src("host_to_otlp.cpu_us_per_transition"))

	usable := 1 - in.Headroom
	r.Collectors = in.Collectors
	if r.Collectors == 0 {
		r.Collectors = max(2, int(math.Ceil(in.Rate/1000*r.CollectorCores/(in.PodCores*usable))))
	}
	add("second-tier collectors", fmt.Sprint(r.Collectors), fmt.Sprintf("CPU at %.0f%% of %g cores per pod, at least 2", usable*100, in.PodCores))
	r.Shards = in.Shards
	if r.Shards == 0 {
		byDisk := int(math.Ceil(r.StoragePerRepl / (in.NodeDisk * gib * usable)))
		byCPU := int(math.Ceil(r.InsertCores / (in.NodeCores * usable)))
		r.Shards = max(1, byDisk, byCPU)
	}
	add("shards", fmt.Sprint(r.Shards), fmt.Sprintf("storage per replica within %.0f%% of %g GiB, insert CPU within %.0f%% of %g cores per node", usable*100, in.NodeDisk, usable*100, in.NodeCores))

	r.Shipped = r.loads(s.Status, s.Traces, spansPerTransition)
	status, traces, advice := r.recommend(s)
	r.Recommended = r.loads(status, traces, spansPerTransition)
	r.Advice = advice
	return r, nil
}

// batches is how many inserts per second one collector sends at rate
// items/s: when a flush interval collects min_size items, it flushes at
// min_size (at most max_size); otherwise on the timer.
func (b Batching) batches(rate float64) float64 {
	if rate <= 0 {
		return 0
	}
	if b.MinSize > 0 && rate*b.Flush.Seconds() >= float64(b.MinSize) {
		return rate / float64(b.MinSize)
	}
	return 1 / b.Flush.Seconds()
}

// loads is the insert load per table per shard.
//   - statustrace inserts go through the Distributed transitions table: each
//     insert is split by the sharding key into one insert per shard, and on
//     every shard both views write a part of their own;
//   - the contrib exporter inserts whole batches into otel_traces on one
//     node (whichever the Service picks), and its trace_id_ts view writes a
//     part too.
//
// With async inserts every server buffers the inserts it receives and
// writes one part per table per flush (async_insert_busy_timeout_max_ms):
// a shard's table then gets a part per flush from every server that
// receives status inserts (all of them, behind the Service; each splits
// its part over the shards), or from its own replicas for otel_traces.
// ClickHouse's guidance is per server and table: about one synchronous
// insert per second, or async inserts flushed about once a second.
func (r *Report) loads(status, traces Batching, spansPerTransition float64) []TableLoad {
	c, sh := float64(r.Collectors), float64(r.Shards)
	servers := sh * float64(r.In.Replicas)
	perColl := r.In.Rate / c
	sIns := c * status.batches(perColl) // into the Distributed table, all collectors; each reaches every shard
	sRows := perColl / status.batches(perColl) / sh
	tRate := perColl * spansPerTransition
	tIns := c * traces.batches(tRate) / sh
	tRows := tRate / traces.batches(tRate)
	var out []TableLoad
	for _, t := range []string{"transitions", "events (view)", "transitions_minute (view)"} {
		out = append(out, load(t, sIns, sRows, math.Min(servers, c*float64(status.Consumers)), status))
	}
	for _, t := range []string{"otel_traces", "otel_traces_trace_id_ts (view)"} {
		out = append(out, load(t, tIns, tRows, math.Min(float64(r.In.Replicas), c*float64(traces.Consumers)), traces))
	}
	return out
}

func load(table string, inserts, rows, queues float64, b Batching) TableLoad {
	l := TableLoad{Table: table, InsertsPerSec: inserts, PartsPerSec: inserts, RowsPerInsert: rows}
	if b.AsyncInsert {
		flush := b.AsyncFlush
		if flush == 0 {
			flush = DefaultAsyncFlush
		}
		l.PartsPerSec = math.Min(inserts, queues/flush.Seconds())
		l.WithinGuidance = flush >= time.Second || inserts <= GuidanceInsertsPerSecond+1e-9
		return l
	}
	l.WithinGuidance = inserts <= GuidanceInsertsPerSecond+1e-9 && rows <= GuidanceMaxRows
	return l
}

// InsertAllowance is the part of the freshness target left for the insert,
// the reader's poll and queueing: the measured p99 minus the plugin's and
// the collector's flushes under load (internal/stack/README.md: p99 806 ms
// with 200 + 200 ms of flushes at load 6-14).
const InsertAllowance = 400 * time.Millisecond

// recommend picks the settings that insert least often per table while the
// status pipeline stays within the freshness target (plugin wait +
// collector flush + server buffer + InsertAllowance). Batches are as large
// as ClickHouse advises (min_size = max_size = 100,000: flushed by the
// timer, not by size, up to 100,000 rows per flush interval per collector).
func (r *Report) recommend(s Settings) (status, traces Batching, advice []string) {
	status, traces = s.Status, s.Traces
	c := float64(r.Collectors)
	servers := float64(r.Shards * r.In.Replicas)
	budget := r.In.Freshness - r.In.PluginWait - InsertAllowance
	if budget < 100*time.Millisecond {
		budget = 100 * time.Millisecond
		advice = append(advice, fmt.Sprintf("the freshness target %s leaves almost nothing to batch with (100 ms assumed)", r.In.Freshness))
	}
	flush := min(budget, time.Second)
	syncParts := c / flush.Seconds() // per table per shard: every collector's insert reaches every shard
	asyncFlush := budget - 200*time.Millisecond
	asyncParts := math.Inf(1)
	if asyncFlush >= 100*time.Millisecond {
		asyncParts = math.Min(servers, c*float64(status.Consumers)) / asyncFlush.Seconds()
	}
	status.MinSize, status.MaxSize = GuidanceMaxRows, GuidanceMaxRows
	if syncParts <= asyncParts {
		status.AsyncInsert, status.AsyncFlush, status.Flush = false, 0, flush
		advice = append(advice, fmt.Sprintf("statustrace: async_insert: false, flush_timeout %s, min_size = max_size = %d: %.1f inserts/s per table per shard (%d collectors / %s); freshness %s (plugin) + %s (collector) + %s (insert, poll, queueing) = %s",
			flush, GuidanceMaxRows, syncParts, r.Collectors, flush, r.In.PluginWait, flush, InsertAllowance, r.In.PluginWait+flush+InsertAllowance))
	} else {
		status.AsyncInsert, status.AsyncFlush, status.Flush = true, asyncFlush, 200*time.Millisecond
		advice = append(advice, fmt.Sprintf("statustrace: async_insert: true (wait_for_async_insert = 1: acknowledged = stored), connection_params async_insert_busy_timeout_max_ms: %d, flush_timeout 200ms: %.1f parts/s per table per shard (one per server per flush), fewer than %.1f synchronous inserts",
			asyncFlush.Milliseconds(), asyncParts, syncParts))
	}
	if math.Min(syncParts, asyncParts) > GuidanceInsertsPerSecond {
		advice = append(advice, fmt.Sprintf("the freshness target %s and ClickHouse's ~%g insert/s per table cannot both hold here: a looser target (-freshness 2s: a 1 s flush) or fewer, larger collectors get closer; at these rates merges keep up (a part per insert, far below parts_to_delay_insert)",
			r.In.Freshness, GuidanceInsertsPerSecond))
	}
	if per := r.In.Rate / c; per*flush.Seconds() > GuidanceMaxRows && !status.AsyncInsert {
		advice = append(advice, fmt.Sprintf("at %.0f transitions/s per collector a flush interval holds more than %d rows: batches flush by size; add collectors or shards", per, GuidanceMaxRows))
	}
	// otel_traces is not on the real-time path: async, flushed once a second.
	traces.AsyncInsert, traces.AsyncFlush = true, time.Second
	advice = append(advice, "clickhouse (otel_traces): async_insert: true, connection_params async_insert_busy_timeout_max_ms: 1000 (not on the real-time path)")
	return status, traces, advice
}

// Write prints the report.
func (r *Report) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "capacity at %.0f transitions/s, %g days retention, %d replicas per shard\n\n", r.In.Rate, r.In.Days, r.In.Replicas)
	fmt.Fprintln(tw, "what\tvalue\tfrom")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", row.What, row.Value, row.From)
	}
	for _, part := range []struct {
		title string
		loads []TableLoad
	}{{"with the shipped collector settings", r.Shipped}, {"with the recommended settings", r.Recommended}} {
		fmt.Fprintf(tw, "\ninsert load per table per shard (%d collectors, %d shards) %s; ClickHouse's guidance: <= %.0f insert/s per table (sync), %d-%d rows per insert\n",
			r.Collectors, r.Shards, part.title, GuidanceInsertsPerSecond, GuidanceMinRows, GuidanceMaxRows)
		fmt.Fprintln(tw, "table\tinserts/s\tnew parts/s\trows/insert\twithin guidance")
		for _, l := range part.loads {
			fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.0f\t%s\n", l.Table, l.InsertsPerSec, l.PartsPerSec, l.RowsPerInsert, yes(l.WithinGuidance))
		}
	}
	fmt.Fprintln(tw, "\nrecommended settings:")
	for _, a := range r.Advice {
		fmt.Fprintln(tw, "  "+a)
	}
	return tw.Flush()
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func f0(x float64) string { return fmt.Sprintf("%.0f", x) }
func f1(x float64) string { return fmt.Sprintf("%.1f", x) }
func f2(x float64) string { return fmt.Sprintf("%.2f", x) }
func f3(x float64) string { return fmt.Sprintf("%.3f", x) }
func gibs(b float64) string {
	if b >= 1024*gib {
		return fmt.Sprintf("%.1f TiB", b/(1024*gib))
	}
	return fmt.Sprintf("%.1f GiB", b/gib)
}

// WriteTable prints a Markdown table of the model at several rates (the
// table in deploy/README.md), with the shipped settings.
func WriteTable(w io.Writer, f Figures, s Settings, in Input, rates []float64) error {
	fmt.Fprintln(w, "| transitions/s | storage per replica | ClickHouse cores for inserts | collector CPU | plugin CPU | collectors | shards | status inserts (= parts)/s per table per shard, rows each | otel_traces parts/s per table per shard | within ClickHouse's guidance |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, rate := range rates {
		in.Rate = rate
		r, err := Model(f, s, in)
		if err != nil {
			return err
		}
		st, tr := r.Shipped[0], r.Shipped[3]
		within := "status: no (freshness); otel_traces: " + strings.ToLower(yes(tr.WithinGuidance))
		if st.WithinGuidance {
			within = "status: yes; otel_traces: " + strings.ToLower(yes(tr.WithinGuidance))
		}
		fmt.Fprintf(w, "| %.0f | %s | %.1f | %.2f cores | %.2f cores | %d | %d | %.1f, %.0f | %.1f | %s |\n", rate, gibs(r.StoragePerRepl), r.InsertCores,
			r.CollectorCores*rate/1000, r.PluginCores*rate/1000, r.Collectors, r.Shards, st.PartsPerSec, st.RowsPerInsert, tr.PartsPerSec, within)
	}
	return nil
}
