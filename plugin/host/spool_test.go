package host

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/statustrace/statustrace/plugin"
	"github.com/statustrace/statustrace/testkit/otlptest"
)

// spoolConfig is pluginConfig with the plugin's spool in dir.
func spoolConfig(r *otlptest.Receiver, dir string) map[string]string {
	c := map[string]string{plugin.KeyEndpoint: r.GRPCAddr, plugin.KeyInsecure: "true", plugin.KeyServiceName: "scheduler-test"}
	c[plugin.KeySpoolDir] = dir
	return c
}

func reportLifecycles(rep *Reporter, prefix string, from, to int) {
	for i := from; i < to; i++ {
		for _, tr := range lifecycle("ns", "fn", fmt.Sprintf("%s-%05d", prefix, i), base+int64(i)*1e6) {
			rep.Report(tr)
		}
	}
}

// checkAllOnce: every span of events prefix-[0,n) arrived, and nothing
// arrived twice.
func checkAllOnce(t *testing.T, recv *otlptest.Receiver, prefix string, n int) {
	t.Helper()
	got := recv.Spans()
	missing := 0
	for i := 0; i < n; i++ {
		for _, key := range spansOfEvent(fmt.Sprintf("%s-%05d", prefix, i)) {
			if _, ok := got[key]; !ok {
				missing++
			}
		}
	}
	if missing > 0 || len(got) != n*6 {
		t.Fatalf("%d spans missing, %d distinct received, want %d", missing, len(got), n*6)
	}
	if recv.Received() != n*6 {
		t.Fatalf("%d spans received for %d distinct: duplicates", recv.Received(), n*6)
	}
}

// waitSpans waits until the receiver holds n distinct spans.
func waitSpans(t *testing.T, recv *otlptest.Receiver, n int) {
	t.Helper()
	if !recv.WaitFor(waitCtx(t), func(r *otlptest.Receiver) bool { return len(r.Spans()) >= n }) {
		t.Fatalf("%d of %d spans arrived", len(recv.Spans()), n)
	}
}

// (a) A graceful stop while the collector is down: Close returns at once
// without an error (everything is in the plugin's spool), and the next
// start, with the collector up, sends every transition exactly once.
func TestGracefulStopWhileCollectorDownLosesNothing(t *testing.T) {
	recv := otlptest.Start(t)
	recv.Down()
	dir := t.TempDir()
	rep := startReporter(t, Config{PluginConfig: spoolConfig(recv, dir), BatchSize: 64, FlushInterval: 5 * time.Millisecond})
	const events = 300
	reportLifecycles(rep, "down", 0, events)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rep.Close(ctx); err != nil {
		t.Fatalf("close with the collector down: %v (stats %+v)", err, rep.Stats())
	}
	st := rep.Stats()
	if st.Acked != events*5 || st.Spooled != events*5 || st.Exported != 0 || st.SpoolBytes == 0 {
		t.Fatalf("stats after close %+v", st)
	}

	if err := recv.Up(); err != nil {
		t.Fatal(err)
	}
	rep2 := startReporter(t, Config{PluginConfig: spoolConfig(recv, dir), FlushInterval: 5 * time.Millisecond})
	waitSpans(t, recv, events*6)
	closeReporter(t, rep2)
	checkAllOnce(t, recv, "down", events)
	if st := rep2.Stats(); st.Replayed != events*5 || st.Exported != events*5 || st.SpoolBytes != 0 {
		t.Fatalf("stats of the second reporter %+v", st)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("spool folder not cleaned up after everything was sent: %v %v", entries, err)
	}
}

// childEnv is how TestMain recognizes a child process of
// TestKill9AfterCloseLosesNothing.
const childEnv = "STATUSTRACE_HOST_TEST_CHILD"

// runChild reports events, closes the reporter, says so on stdout and waits
// to be killed.
func runChild() {
	n, _ := strconv.Atoi(os.Getenv(childEnv + "_EVENTS"))
	rep, err := Start(context.Background(), Config{
		PluginPath: os.Getenv(childEnv + "_PLUGIN"),
		PluginConfig: map[string]string{
			plugin.KeyEndpoint: os.Getenv(childEnv + "_ENDPOINT"), plugin.KeyInsecure: "true",
			plugin.KeySpoolDir: os.Getenv(childEnv + "_SPOOL"),
		},
		BatchSize: 64, FlushInterval: 5 * time.Millisecond,
	})
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	reportLifecycles(rep, "kill9", 0, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = rep.Close(ctx)
	fmt.Printf("closed %v\n", err)
	select {} // until kill -9
}

// (b) kill -9 of the scheduler process right after Close returned (the
// collector being down): nothing is lost, nothing is sent twice.
func TestKill9AfterCloseLosesNothing(t *testing.T) {
	recv := otlptest.Start(t)
	recv.Down()
	dir := t.TempDir()
	const events = 200
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childEnv+"_EVENTS="+strconv.Itoa(events), childEnv+"_PLUGIN="+pluginPath,
		childEnv+"_ENDPOINT="+recv.GRPCAddr, childEnv+"_SPOOL="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "closed <nil>" {
		t.Fatalf("child: %q %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	if err := recv.Up(); err != nil {
		t.Fatal(err)
	}
	rep := startReporter(t, Config{PluginConfig: spoolConfig(recv, dir)})
	waitSpans(t, recv, events*6)
	closeReporter(t, rep)
	checkAllOnce(t, recv, "kill9", events)
}

// Item 4: after the collector was away longer than an unbounded reconnect
// backoff would grow to, exports resume within 2 s of its return.
func TestExportsResumeQuicklyAfterCollectorReturns(t *testing.T) {
	for _, proto := range []string{plugin.ProtocolGRPC, plugin.ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			recv := otlptest.Start(t)
			cfg := spoolConfig(recv, t.TempDir())
			if proto == plugin.ProtocolHTTP {
				cfg[plugin.KeyProtocol], cfg[plugin.KeyEndpoint] = proto, recv.HTTPURL
			}
			rep := startReporter(t, Config{PluginConfig: cfg, FlushInterval: 5 * time.Millisecond})
			reportLifecycles(rep, "before", 0, 10)
			waitSpans(t, recv, 10*6)

			recv.Down()
			// Keep transitions coming during the outage, as a scheduler does.
			const outage = 8 * time.Second
			end := time.Now().Add(outage)
			for i := 0; time.Now().Before(end); i++ {
				reportLifecycles(rep, "during", i, i+1)
				time.Sleep(100 * time.Millisecond)
			}
			up := time.Now()
			if err := recv.Up(); err != nil {
				t.Fatal(err)
			}
			var first time.Time
			if !recv.WaitFor(waitCtx(t), func(r *otlptest.Receiver) bool {
				var ok bool
				first, ok = r.FirstAcceptedAfter(up)
				return ok
			}) {
				t.Fatal("no export accepted after the collector came back")
			}
			took := first.Sub(up)
			t.Logf("%s: first export accepted %v after the collector came back (outage %v)", proto, took, outage)
			if took > 2*time.Second {
				t.Fatalf("exports resumed %v after the collector came back, want < 2s", took)
			}
		})
	}
}
