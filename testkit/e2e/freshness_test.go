package e2e

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/statustrace/statustrace/event"
	stapi "github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/scheduler/config"
)

// Knobs (environment), with the defaults the issue asks for.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

const (
	benchTenant = "bench"
	benchNS     = "bench"
	probeDelay  = 300 * time.Millisecond // a probe runs this long, so RUNNING and FINISHED are seen apart
	pollEvery   = 100 * time.Millisecond
)

// freshnessTargetMs is the p99 BenchmarkFreshness must stay within.
const freshnessTargetMs = 1000

// BenchmarkFreshness measures how long a state change takes from the
// scheduler to the events view while the whole pipeline — scheduler with
// the plugin, collector with its shipped config (collector/config.yaml),
// ClickHouse — carries a steady load of transitions:
//
//   - probes: real scheduler invocations (PROBES_PER_S, default 10/s) of a
//     function that runs 300 ms; every new state of a probe that the events
//     view shows is one sample: (time the poll's answer arrived) −
//     (the transition's timestamp, taken in the scheduler). One query for
//     all outstanding probes every 100 ms.
//   - load: the same scheduler invokes a succeeding function
//     (STATUSTRACE_BENCH_SCHEDULER_RPS, default 100 invocations/s, three
//     transitions each); a SQLite scheduler on this 2-core machine cannot
//     carry 5,000 transitions/s alongside the collector and ClickHouse, so a
//     synthetic second scheduler node tops the load up to
//     STATUSTRACE_BENCH_RATE (default 5000) transitions/s through the real
//     plugin host and plugin binary to the same collector.
//
// After a 10 s warm-up it measures for STATUSTRACE_BENCH_SECONDS (default
// 60) and prints the rate actually stored in that window (counted in
// ClickHouse) and the latency percentiles:
//
//	BENCH freshness rate=<transitions/s> p50_ms=<ms> p99_ms=<ms>
//
// It fails when the target is missed: p99 <= 1000 ms at 5,000
// transitions/s (the rate stored must reach 95% of STATUSTRACE_BENCH_RATE).
// STATUSTRACE_BENCH_NAME replaces "freshness" in that line,
// STATUSTRACE_BENCH_ENGINE says in the output which engine served it.
//
// Run it once: go test -run '^$' -bench Freshness -benchtime 1x ./testkit/e2e/
func BenchmarkFreshness(b *testing.B) {
	var (
		totalRate    = envInt("STATUSTRACE_BENCH_RATE", 5000)
		schedulerRPS = envInt("STATUSTRACE_BENCH_SCHEDULER_RPS", 100)
		probesPerS   = envInt("STATUSTRACE_BENCH_PROBES_PER_S", 10)
		window       = time.Duration(envInt("STATUSTRACE_BENCH_SECONDS", 60)) * time.Second
		warmup       = 10 * time.Second
	)
	s, db := startStack(b, config.Config{
		Node:    "bench-node-1",
		Tenant:  benchTenant,
		Workers: 100,
		Functions: []config.Function{
			{Namespace: benchNS, Name: "load", Endpoint: stack.DemoBase + "/succeed", Retries: ptr(0)},
			{Namespace: benchNS, Name: "probe", Endpoint: stack.DemoBase + "/slow?delay=" + probeDelay.String(), Retries: ptr(0)},
		},
	})
	_, bins := built.Get(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The synthetic node: what the scheduler does not produce.
	schedRate := 3 * (schedulerRPS + probesPerS)
	synthRate := totalRate - schedRate
	var synth *stack.Synthetic
	if synthRate > 0 {
		var err error
		synth, err = stack.StartSynthetic(ctx, stack.SyntheticOptions{
			PluginPath: bins.Plugin, OTLPGRPC: s.OTLPGRPC, Node: "synthetic-node-2", Rate: float64(synthRate),
			Keys: event.Keys{Tenant: benchTenant, Namespace: benchNS, Function: "synthetic", Qualifier: "$LATEST"},
		})
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer ccancel()
			if err := synth.Stop(cctx); err != nil {
				b.Errorf("synthetic node: %v", err)
			}
		}()
	}

	sc := stack.NewSchedulerClient(s.SchedulerURL, s.SchedulerToken)
	sc.HTTP.Transport.(*http.Transport).MaxIdleConnsPerHost = 128
	loadStop := make(chan struct{})
	var loadWG sync.WaitGroup
	var loadBehind, loadErrors atomic.Int64
	loadWG.Add(1)
	go func() {
		defer loadWG.Done()
		steadyInvocations(ctx, sc, "load", float64(schedulerRPS), loadStop, &loadBehind, &loadErrors)
	}()

	// Probes and the poller.
	p := newProber(db.Conn)
	time.Sleep(warmup)
	t0 := time.Now()
	probeStop := make(chan struct{})
	var probeWG sync.WaitGroup
	probeWG.Add(1)
	go func() {
		defer probeWG.Done()
		every := time.Second / time.Duration(probesPerS)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-probeStop:
				return
			case <-tick.C:
			}
			rid := fmt.Sprintf("probe-%d", i)
			// Watched from before the invocation, so that no state can
			// show up before the poller looks for it.
			p.add(rid)
			go func() {
				code, _, err := sc.Invoke(ctx, stack.Invocation{Namespace: benchNS, Function: "probe", RequestID: rid, Payload: []byte(`{}`)})
				if err != nil || code != http.StatusAccepted {
					p.failed.Add(1)
					p.remove(rid)
				}
			}()
		}
	}()
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		p.poll(ctx, probeStop)
	}()

	// Where a backlog would build: the synthetic host's buffer and the
	// collector's sending queues (sampled every second).
	var monMu sync.Mutex
	maxQueue := map[string]float64{}
	var maxDepth uint64
	monStop := make(chan struct{})
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-monStop:
				return
			case <-t.C:
			}
			q, err := s.CollectorQueues(ctx)
			monMu.Lock()
			if err == nil {
				for k, v := range q {
					maxQueue[k] = max(maxQueue[k], v)
				}
			}
			if synth != nil {
				maxDepth = max(maxDepth, synth.Stats().QueueDepth)
			}
			monMu.Unlock()
		}
	}()

	b.ResetTimer()
	time.Sleep(window)
	t1 := time.Now()
	close(probeStop)
	probeWG.Wait()
	// Let the last probes finish and show up (bounded: a backlog in the
	// pipeline drains at the engine's pace while the load goes on).
	drain := time.Now().Add(3 * time.Minute)
	for p.outstanding() > 0 && time.Now().Before(drain) {
		p.pollOnce(ctx)
		time.Sleep(pollEvery)
	}
	b.StopTimer()
	close(monStop)
	<-monDone
	close(loadStop)
	loadWG.Wait()
	<-pollDone

	// The rate actually stored in the window, once everything is flushed.
	rates, err := storedRates(ctx, db.Conn, t0, t1)
	if err != nil {
		b.Fatal(err)
	}
	secs := t1.Sub(t0).Seconds()
	total := 0.0
	for _, n := range rates {
		total += float64(n)
	}
	samples := p.sorted()
	if len(samples) == 0 {
		b.Fatal("no probe sample")
	}
	p50, p99 := percentile(samples, 0.50), percentile(samples, 0.99)
	b.Logf("window %.0fs: scheduler %.0f transitions/s (target %d: %d invocations/s of load + %d probes/s), synthetic node %.0f/s (target %d, through plugin/host + plugin binary); load behind schedule %d, invoke errors %d",
		secs, float64(rates["bench-node-1"])/secs, schedRate, schedulerRPS, probesPerS, float64(rates["synthetic-node-2"])/secs, synthRate, loadBehind.Load(), loadErrors.Load())
	if synth != nil {
		st := synth.Stats()
		b.Logf("synthetic node: %d reported, %d dropped, %d acked; largest buffer backlog %d transitions", synth.Reported(), st.Dropped, st.Acked, maxDepth)
	}
	b.Logf("collector sending queues, largest backlog in batches: %v", maxQueue)
	b.Logf("probes: %d started, %d failed to invoke, %d never seen terminal; %d samples; max %.0f ms; %d polls (%d failed)",
		p.started.Load(), p.failed.Load(), p.outstanding(), len(samples), samples[len(samples)-1], p.polls.Load(), p.pollErr.Load())
	if p.outstanding() > 0 || len(samples) < 300 {
		b.Errorf("too few complete probes: %d samples, %d outstanding", len(samples), p.outstanding())
	}
	// The API shows the probes as the view did.
	ac := &stapi.Client{BaseURL: s.APIURL, Token: s.APIToken}
	page, err := ac.List(ctx, queries.ListFilter{Namespace: benchNS, Function: "probe", Limit: queries.MaxLimit})
	if err != nil {
		b.Errorf("API list of probes: %v", err)
	} else if page.Total != uint64(p.started.Load()-p.failed.Load()) {
		b.Errorf("API lists %d probes, %d were accepted", page.Total, p.started.Load()-p.failed.Load())
	}
	if path := os.Getenv("STATUSTRACE_BENCH_TRACE"); path != "" {
		// Every sample in time order, to find stalls.
		if err := os.WriteFile(path, []byte(strings.Join(p.trace, "\n")+"\n"), 0o644); err != nil {
			b.Errorf("trace: %v", err)
		}
	}
	b.ReportMetric(p50, "p50_ms")
	b.ReportMetric(p99, "p99_ms")
	b.ReportMetric(total/secs, "transitions/s")
	var version string
	if err := db.Conn.QueryRow(context.Background(), "SELECT version()").Scan(&version); err != nil {
		b.Errorf("ClickHouse version: %v", err)
	}
	fmt.Printf("freshness: ClickHouse %s (%s)\n", version, cmp.Or(os.Getenv("STATUSTRACE_BENCH_ENGINE"), "CLICKHOUSE_DSN or the default local endpoint"))
	fmt.Printf("freshness: %d samples from %d probes over %.0fs; stored transitions/s: scheduler %.0f (real invocations) + synthetic second node %.0f (plugin/host + plugin binary, topping up)\n",
		len(samples), p.started.Load(), secs, float64(rates["bench-node-1"])/secs, float64(rates["synthetic-node-2"])/secs)
	fmt.Printf("freshness: largest backlog: collector sending queues %v batches, synthetic host buffer %d transitions\n", maxQueue, maxDepth)
	verdict := "met"
	if p99 > freshnessTargetMs || total/secs < 0.95*float64(totalRate) {
		verdict = "MISSED"
	}
	fmt.Printf("freshness: target p99 <= %d ms at %d transitions/s: %s\n", freshnessTargetMs, totalRate, verdict)
	name := cmp.Or(os.Getenv("STATUSTRACE_BENCH_NAME"), "freshness")
	fmt.Printf("BENCH %s rate=%.0f p50_ms=%.0f p99_ms=%.0f\n", name, total/secs, p50, p99)
	if verdict != "met" {
		b.Errorf("target missed: p99 %.0f ms (target %d) at %.0f transitions/s stored (%d offered)", p99, freshnessTargetMs, total/secs, totalRate)
	}
}

// steadyInvocations invokes fn at rate per second until stop, open loop: a
// call that cannot start on time counts as behind.
func steadyInvocations(ctx context.Context, sc *stack.SchedulerClient, fn string, rate float64, stop <-chan struct{}, behind, errs *atomic.Int64) {
	jobs := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				code, _, err := sc.Invoke(ctx, stack.Invocation{Namespace: benchNS, Function: fn, Payload: []byte(`{}`)})
				if err != nil || code != http.StatusAccepted {
					errs.Add(1)
				}
			}
		}()
	}
	defer func() { close(jobs); wg.Wait() }()
	start := time.Now()
	sent := int64(0)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int64(time.Since(start).Seconds()*rate) - sent
		for range due {
			sent++
			select {
			case jobs <- struct{}{}:
			default:
				behind.Add(1)
			}
		}
	}
}

// prober tracks the probes' states as the events view shows them.
type prober struct {
	conn    driver.Conn
	mu      sync.Mutex
	seen    map[string]probeState // outstanding probes
	samples []float64             // ms
	trace   []string              // "seen_unix_ms latency_ms request_id seq", when tracing
	started atomic.Int64
	failed  atomic.Int64
	polls   atomic.Int64
	pollErr atomic.Int64
}

type probeState struct {
	invoked time.Time
	seq     uint64 // highest seq seen
}

func newProber(conn driver.Conn) *prober {
	return &prober{conn: conn, seen: map[string]probeState{}}
}

func (p *prober) add(rid string) {
	p.started.Add(1)
	p.mu.Lock()
	p.seen[rid] = probeState{invoked: time.Now()}
	p.mu.Unlock()
}

func (p *prober) remove(rid string) {
	p.mu.Lock()
	delete(p.seen, rid)
	p.mu.Unlock()
}

func (p *prober) outstanding() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}

// poll queries every pollEvery, or pollEvery after the previous answer when
// a query takes longer, so that the poller never queues queries behind
// each other on the engine.
func (p *prober) poll(ctx context.Context, stop <-chan struct{}) {
	for {
		next := time.Now().Add(pollEvery)
		p.pollOnce(ctx)
		wait := time.Until(next)
		if wait <= 0 {
			wait = pollEvery
		}
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// pollOnce asks the events view for every outstanding probe in one query
// and records a sample for each state not seen before: the time the answer
// arrived minus the transition's timestamp (taken in the scheduler).
func (p *prober) pollOnce(ctx context.Context) {
	p.mu.Lock()
	ids := make([]string, 0, len(p.seen))
	for id := range p.seen {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	p.polls.Add(1)
	// The light columns of the view (no aggregate-state column): the
	// latest seq, its time, and whether the event has ended. They are
	// written by the same insert as the current state.
	rows, err := p.conn.Query(ctx, `
SELECT request_id, max(last_seq), toUnixTimestamp64Nano(max(last_time)), max(end_time) IS NOT NULL
FROM events
WHERE tenant = ? AND namespace = ? AND function = 'probe' AND request_id IN ?
GROUP BY tenant, namespace, function, qualifier, request_id`, benchTenant, benchNS, ids)
	if err != nil {
		p.pollErr.Add(1) // counted as latency: the next poll sees it later
		return
	}
	defer rows.Close()
	type obs struct {
		rid   string
		seq   uint64
		tns   int64
		ended bool
	}
	var got []obs
	for rows.Next() {
		var o obs
		if err := rows.Scan(&o.rid, &o.seq, &o.tns, &o.ended); err != nil {
			p.pollErr.Add(1)
			return
		}
		got = append(got, o)
	}
	if rows.Err() != nil {
		p.pollErr.Add(1)
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range got {
		st, ok := p.seen[o.rid]
		if !ok || o.seq <= st.seq {
			continue
		}
		p.samples = append(p.samples, float64(now.UnixNano()-o.tns)/1e6)
		p.trace = append(p.trace, fmt.Sprintf("%d %.0f %s %d", now.UnixMilli(), float64(now.UnixNano()-o.tns)/1e6, o.rid, o.seq))
		st.seq = o.seq
		p.seen[o.rid] = st
		if o.ended {
			delete(p.seen, o.rid)
		}
	}
}

func (p *prober) sorted() []float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := slices.Clone(p.samples)
	slices.Sort(s)
	return s
}

// percentile of sorted values, nearest rank.
func percentile(sorted []float64, q float64) float64 {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// storedRates counts the transitions stored per node with a timestamp in
// [t0, t1), waiting until the count stops growing (the pipeline drained).
func storedRates(ctx context.Context, conn driver.Conn, t0, t1 time.Time) (map[string]uint64, error) {
	var last map[string]uint64
	for range 60 {
		rows, err := conn.Query(ctx, `
SELECT node, count()
FROM transitions FINAL
WHERE tenant = ? AND time >= fromUnixTimestamp64Nano(?) AND time < fromUnixTimestamp64Nano(?)
GROUP BY node`, benchTenant, t0.UnixNano(), t1.UnixNano())
		if err != nil {
			return nil, fmt.Errorf("count stored transitions: %w", err)
		}
		cur := map[string]uint64{}
		for rows.Next() {
			var node string
			var n uint64
			if err := rows.Scan(&node, &n); err != nil {
				rows.Close()
				return nil, err
			}
			cur[node] = n
		}
		rows.Close()
		if last != nil && fmt.Sprint(cur) == fmt.Sprint(last) {
			return cur, nil
		}
		last = cur
		time.Sleep(2 * time.Second)
	}
	return last, nil
}
