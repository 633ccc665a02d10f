package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/plugin"
	pb "github.com/statustrace/statustrace/plugin/proto"
	"github.com/statustrace/statustrace/testkit/otlptest"
)

// BenchmarkReport measures Report on the scheduler's path beside the
// baseline of one unary go-plugin gRPC call per transition (to the same
// plugin binary; the call only decodes and validates, so the baseline is a
// lower bound of what a per-transition RPC design costs), and prints the
// ratio.
func BenchmarkReport(b *testing.B) {
	tr := lifecycle("ns", "fn", "bench-report", base)[1]
	var nsReport, nsUnary float64

	// Accepted path. The consumer is the loop's own first step (pop and
	// convert to the wire message) without the network behind it; the
	// producer reports half a buffer at a time and, timer stopped, lets it
	// drain, so that every measured Report is accepted (dropped = 0).
	b.Run("report", func(b *testing.B) { nsReport = benchAccepted(b, tr, 0) })
	// With some functions switched off, Report looks the function up.
	b.Run("report_switch_in_use", func(b *testing.B) { benchAccepted(b, tr, 100) })

	recv := otlptest.Start(b)
	recv.CountOnly()
	rep := startReporter(b, Config{PluginConfig: pluginConfig(b, recv)})

	// Drop path: the buffer is full (plugin stalled: SIGSTOP).
	b.Run("report_full", func(b *testing.B) {
		pid := rep.PluginPID()
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
		for rep.Stats().Dropped == 0 {
			rep.Report(tr)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rep.Report(tr)
		}
	})
	closeReporter(b, rep) // its backlog must not run beside the next measurement

	b.Run("unary_rpc", func(b *testing.B) {
		pc := dialPlugin(b)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			tr.Seq = uint64(i)
			if err := pc.ReportOne(ctx, &tr); err != nil {
				b.Fatal(err)
			}
		}
		nsUnary = float64(time.Since(start).Nanoseconds()) / float64(b.N)
	})
	if nsReport > 0 && nsUnary > 0 {
		fmt.Printf("BENCH report_vs_unary_rpc ns_report=%.1f ns_unary=%.1f ratio=%.1f\n", nsReport, nsUnary, nsUnary/nsReport)
	}
}

// dialPlugin launches the plugin binary directly through go-plugin.
func dialPlugin(b *testing.B) plugin.Client {
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		VersionedPlugins: plugin.VersionedPlugins(),
		Cmd:              exec.Command(pluginPath),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Level: hclog.Warn}),
	})
	b.Cleanup(client.Kill)
	proto, err := client.Client()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := proto.Dispense(plugin.Name)
	if err != nil {
		b.Fatal(err)
	}
	return raw.(plugin.Client)
}

// BenchmarkHostToOTLP measures sustained throughput from Report through the
// plugin process (through its fsynced spool) to an OTLP/gRPC endpoint on
// this machine: the time until every transition's spans were received. The producer paces itself
// on the queue depth so that nothing is dropped. Two endpoints:
//   - counting_sink counts spans on the wire format and answers OK, so the
//     figure is the pipeline's own (a collector normally runs elsewhere);
//   - pdata_receiver decodes every request into pdata as a collector's OTLP
//     receiver does, on the same two cores.
func BenchmarkHostToOTLP(b *testing.B) {
	b.Run("counting_sink", func(b *testing.B) {
		sink := otlptest.StartCounter(b)
		rate, cpu := benchThroughput(b, sink.GRPCAddr, func() int { return int(sink.Spans()) })
		if b.N >= 10000 {
			fmt.Printf("BENCH host_to_otlp transitions_per_s=%.0f spans_received=%d receiver=counting_sink cpu_us_per_transition=%.2f cpu_bound_transitions_per_s_2cores=%.0f\n",
				rate, sink.Spans(), cpu*1e6, 2/cpu)
		}
	})
	b.Run("pdata_receiver", func(b *testing.B) {
		recv := otlptest.Start(b)
		recv.CountOnly()
		rate, cpu := benchThroughput(b, recv.GRPCAddr, recv.Received)
		if b.N >= 10000 {
			fmt.Printf("BENCH host_to_otlp_pdata_receiver transitions_per_s=%.0f spans_received=%d cpu_us_per_transition=%.2f cpu_bound_transitions_per_s_2cores=%.0f\n",
				rate, recv.Received(), cpu*1e6, 2/cpu)
		}
	})
}

// benchThroughput returns transitions per second of wall time, and CPU
// seconds per transition spent by this process (producer, reporter, OTLP
// endpoint) and the plugin process together. The machine's cores are shared
// with other work, so the CPU figure is the stable one: 2/cpu is the rate
// two cores of our own would sustain.
func benchThroughput(b *testing.B, endpoint string, received func() int) (float64, float64) {
	rep := startReporter(b, Config{PluginConfig: map[string]string{plugin.KeyEndpoint: endpoint, plugin.KeyInsecure: "true",
		plugin.KeySpoolDir: b.TempDir()}})
	events := b.N/5 + 1
	ids := make([]string, events)
	for i := range ids {
		ids[i] = "thr-" + strconv.Itoa(i)
	}
	steps := lifecycle("ns", "fn", "", base)
	limit := uint64(rep.cfg.BufferSize * 3 / 4)
	pid := rep.PluginPID()
	cpu0 := procCPU(b, os.Getpid()) + procCPU(b, pid)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t := steps[i%5]
		t.RequestID = ids[i/5]
		t.TimeUnixNano = base + int64(i)
		rep.Report(t)
		if i%256 == 0 {
			for rep.Stats().QueueDepth > limit {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	// Every transition is a span, every fifth (terminal) one a second span.
	for want := b.N + b.N/5; received() < want; {
		time.Sleep(200 * time.Microsecond)
	}
	elapsed := time.Since(start)
	cpu := (procCPU(b, os.Getpid()) + procCPU(b, pid) - cpu0).Seconds() / float64(b.N)
	b.StopTimer()
	if st := rep.Stats(); st.Dropped > 0 || st.Restarts > 0 {
		b.Fatalf("dropped %d, restarts %d", st.Dropped, st.Restarts)
	}
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "transitions/s")
	b.ReportMetric(cpu*1e9, "cpu-ns/transition")
	return rate, cpu
}

// procCPU is the user+system CPU time of a process so far (Linux /proc).
func procCPU(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatalf("cpu time of %d: %v", pid, err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	// Fields after the command: state is f[0], utime f[11], stime f[12], in clock ticks (100/s on Linux).
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// benchAccepted measures Report on the accepted path; see BenchmarkReport.
func benchAccepted(b *testing.B, tr event.Transition, switchedOff int) float64 {
	rep, err := newReporter(Config{PluginPath: "unused"})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < switchedOff; i++ {
		rep.SetTracing("ns", "off-"+strconv.Itoa(i), false)
	}
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		var t event.Transition
		var m pb.Transition
		for {
			if rep.ring.pop(&t) {
				plugin.ToProto(&m, &t)
				continue
			}
			select {
			case <-stop:
				return
			default:
				runtime.Gosched()
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	chunk := rep.cfg.BufferSize / 2
	var elapsed time.Duration
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		start := time.Now()
		for i := 0; i < n; i++ {
			tr.Seq = uint64(done + i)
			rep.Report(tr)
		}
		elapsed += time.Since(start)
		done += n
		b.StopTimer()
		for rep.ring.depth() > 0 {
			runtime.Gosched()
		}
		b.StartTimer()
	}
	b.StopTimer()
	close(stop)
	<-drained
	b.ReportMetric(float64(rep.Stats().Dropped), "dropped")
	return float64(elapsed.Nanoseconds()) / float64(b.N)
}
