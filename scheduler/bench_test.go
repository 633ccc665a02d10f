package scheduler_test

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/statustrace/statustrace/scheduler/config"
)

// BenchmarkSchedulerTraceOnVsOff measures invocations per second end to end
// (HTTP invoke → River on SQLite → function call) with status trace on (the
// real plugin exporting to a real OTLP receiver) and off, in one run, in
// alternating rounds so that drift hits both alike, and prints
//
//	BENCH scheduler_trace_on_vs_off throughput_ratio=<on/off>
//
// Run it once: go test -run '^$' -bench SchedulerTraceOnVsOff -benchtime 1x ./scheduler/
func BenchmarkSchedulerTraceOnVsOff(b *testing.B) {
	const (
		rounds   = 12  // pairs of rounds, one with trace on and one off
		perRound = 400 // invocations
		clients  = 16  // concurrent callers
	)
	d, demoURL := demo(b)
	rx := startReceiver(b)
	rx.countOnly = true            // it stands for a collector, which runs elsewhere in production
	rep := startReporter(b, rx, 0) // the host's default flush interval
	cfg := benchConfig(b, demoURL)
	n := startNode(b, cfg, rep, nil)

	var seq atomic.Int64
	round := func(traceOn bool) time.Duration {
		if _, err := n.s.SetTracing(b.Context(), "demo", "succeed", &traceOn); err != nil {
			b.Fatal(err)
		}
		ids := make([]string, perRound)
		for i := range ids {
			ids[i] = fmt.Sprintf("bench-%d", seq.Add(1))
		}
		start := time.Now()
		var wg sync.WaitGroup
		var next atomic.Int64
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= perRound {
						return
					}
					if code := benchInvoke(n.url, ids[i]); code != http.StatusAccepted {
						b.Errorf("invoke: HTTP %d", code)
						return
					}
				}
			}()
		}
		wg.Wait()
		// Done when the function has been called for every invocation.
		deadline := time.Now().Add(2 * time.Minute)
		for _, rid := range ids {
			for d.Calls(rid) == 0 {
				if time.Now().After(deadline) {
					b.Fatalf("invocation %s never ran", rid)
				}
				time.Sleep(time.Millisecond)
			}
		}
		return time.Since(start)
	}

	round(true) // warm up both paths: connections, plugin, SQLite pages
	round(false)
	// Rounds go off, on, on, off, off, on, ...: each adjacent pair holds one
	// of each mode, measured moments apart. The ratio is the median over the
	// pairs, so that a burst of load from elsewhere on the machine during one
	// round does not decide the result.
	var on, off time.Duration
	var ratios []float64
	for p := range rounds {
		var pairOn, pairOff time.Duration
		for _, traceOn := range [][2]bool{{false, true}, {true, false}}[p%2] {
			d := round(traceOn)
			if traceOn {
				pairOn, on = d, on+d
			} else {
				pairOff, off = d, off+d
			}
		}
		ratios = append(ratios, pairOff.Seconds()/pairOn.Seconds()) // same work: rate ratio = inverse time ratio
	}
	sort.Float64s(ratios)
	ratio := ratios[len(ratios)/2]
	if len(ratios)%2 == 0 {
		ratio = (ratios[len(ratios)/2-1] + ratios[len(ratios)/2]) / 2
	}
	onRate := float64(rounds*perRound) / on.Seconds()
	offRate := float64(rounds*perRound) / off.Seconds()
	b.ReportMetric(onRate, "inv/s_on")
	b.ReportMetric(offRate, "inv/s_off")
	b.ReportMetric(ratio, "on/off")
	st := rep.Stats()
	// Where the CPU went: status trace's main cost is the plugin process.
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	pluginCPU := "?"
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", rep.PluginPID())); err == nil {
		if f := strings.Fields(string(stat)); len(f) > 14 {
			ut, _ := strconv.Atoi(f[13])
			st, _ := strconv.Atoi(f[14])
			pluginCPU = (time.Duration(ut+st) * 10 * time.Millisecond).String() // clock ticks of 10ms
		}
	}
	fmt.Printf("cpu: test process (scheduler, host, demo functions, receiver) %v, plugin process %s\n",
		time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Round(time.Millisecond), pluginCPU)
	fmt.Printf("scheduler throughput: trace on %.0f inv/s, off %.0f inv/s (%d rounds of each mode x %d invocations, %d callers; ratio is the median of paired rounds); reporter: %d reported, %d dropped; receiver: %d spans\n",
		onRate, offRate, rounds, perRound, clients, st.Reported, st.Dropped, rx.counted.Load())
	fmt.Printf("BENCH scheduler_trace_on_vs_off throughput_ratio=%.3f\n", ratio)
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func benchInvoke(baseURL, rid string) int {
	req, err := http.NewRequest(http.MethodPost, baseURL+"/v1/namespaces/demo/functions/succeed/invocations", nil)
	if err != nil {
		return 0
	}
	req.Header.Set("X-Request-Id", rid)
	resp, err := benchClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func benchConfig(tb testing.TB, demoURL string) *config.Config {
	cfg := &config.Config{
		Node:          "bench-node",
		Tenant:        "acme",
		Workers:       32,
		FetchPoll:     ms(50),
		FetchCooldown: ms(5),
		SettingsPoll:  config.Duration(time.Hour),
		Database:      config.Database{Driver: config.DriverSQLite, DSN: tb.TempDir() + "/bench.db"},
		Functions: []config.Function{
			{Name: "succeed", Namespace: "demo", Endpoint: demoURL + "/succeed"},
		},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	return cfg
}
