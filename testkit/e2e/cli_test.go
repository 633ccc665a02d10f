package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/queries"
)

// cliRun is one run of the built statustrace binary.
type cliRun struct {
	code           int
	stdout, stderr string
}

// cliEnv is a clean environment: only what a user's shell would add.
func cliEnv(extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, extra...)
}

func runCLI(t *testing.T, bin string, env []string, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cliRun{stdout: out.String(), stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return r
}

// follower runs a long-lived CLI command (watch, get -w) and collects its
// output lines.
type follower struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	done   chan struct{}
	stderr bytes.Buffer
}

func follow(t *testing.T, bin string, env []string, args ...string) *follower {
	t.Helper()
	f := &follower{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	f.cmd.Env = env
	f.cmd.Stderr = &f.stderr
	out, err := f.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, f.cmd.Start())
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f.mu.Lock()
			f.lines = append(f.lines, sc.Text())
			f.mu.Unlock()
		}
		_ = f.cmd.Wait()
		close(f.done)
	}()
	t.Cleanup(func() {
		_ = f.cmd.Process.Kill()
		<-f.done
	})
	return f
}

func (f *follower) output() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.lines, "\n")
}

func (f *follower) waitFor(t *testing.T, within time.Duration, want string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if strings.Contains(f.output(), want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%v: no %q in its output within %s:\n%s\nstderr: %s", f.cmd.Args, want, within, f.output(), f.stderr.String())
}

// TestCLIAgainstThePipeline runs the built statustrace binary as a user
// does, against `statustrace serve` of a running pipeline (real scheduler,
// plugin, collector, ClickHouse): watching live, terminating, the function
// list and its status-trace switch, the trace command, -o wide, shell
// completion, and the exit codes and messages of the README's table.
func TestCLIAgainstThePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline; skipped with -short")
	}
	_, bins := built.Get(t)
	if bins.Statustrace == "" {
		t.Skip("this checkout has no cmd/statustrace")
	}
	bin := bins.Statustrace
	s, _ := startStackWith(t, e2eConfig(), []string{"--live-interval", "200ms"})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sc := stack.NewSchedulerClient(s.SchedulerURL, s.SchedulerToken)
	env := cliEnv("STATUSTRACE_SERVER="+s.APIURL, "STATUSTRACE_TOKEN="+s.APIToken)

	invokeShop(t, ctx, sc, "ok-0", "fail-0", "wait-0", "wait-1")
	waitFor(t, ctx, func() bool {
		r := runCLI(t, bin, env, "events", "list", "--status", "FAILED,RUNNING", "-o", "json")
		var p queries.Page
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &p) == nil && p.Total == 3
	}, func() string { return "fail-0 and the two waiting events never reached the API" })

	t.Run("WatchAndTerminate", func(t *testing.T) {
		get := follow(t, bin, env, "events", "get", "wait-0", "-w")
		get.waitFor(t, time.Minute, "watching for changes until the event ends")
		watch := follow(t, bin, env, "events", "watch", "--function", "wait", "-o", "json")
		time.Sleep(time.Second) // the stream is open before the change

		r := runCLI(t, bin, env, "events", "terminate", "wait-0", "--immediate")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "terminate requested (immediate): wait-0")

		// events get -w prints the new transition and exits by itself.
		select {
		case <-get.done:
		case <-time.After(time.Minute):
			t.Fatalf("events get -w did not end with the event:\n%s", get.output())
		}
		assert.Equal(t, 0, get.cmd.ProcessState.ExitCode(), get.stderr.String())
		assert.Contains(t, get.output(), event.StateAborted.String())

		// events watch prints the change as a JSON line and stops on Ctrl-C.
		// (an immediate terminate may show a change before ABORTED: wait
		// for the end, not the first line)
		watch.waitFor(t, time.Minute, `"status":"`+event.PublicAborted+`"`)
		var last queries.Event
		for _, l := range strings.Split(watch.output(), "\n") {
			if strings.Contains(l, `"wait-0"`) {
				require.NoError(t, json.Unmarshal([]byte(l), &last))
			}
		}
		assert.Equal(t, event.PublicAborted, last.Status)
		require.NoError(t, watch.cmd.Process.Signal(os.Interrupt))
		<-watch.done
		assert.Equal(t, 0, watch.cmd.ProcessState.ExitCode(), watch.stderr.String())

		// An ended event cannot be terminated: a failure (1), one line.
		r = runCLI(t, bin, env, "events", "terminate", "wait-0")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "event_ended")
	})

	t.Run("Functions", func(t *testing.T) {
		r := runCLI(t, bin, env, "functions", "list", "--since", "1d")
		require.Equal(t, 0, r.code, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.GreaterOrEqual(t, len(lines), 4, r.stdout)
		assert.True(t, strings.HasPrefix(lines[0], "NAMESPACE"), lines[0])
		for _, fn := range []string{"ok", "fail", "wait"} {
			assert.Regexp(t, `(?m)^shop\s+`+fn+`\s`, r.stdout)
		}

		status := func(args ...string) string {
			r := runCLI(t, bin, env, append([]string{"functions", "trace"}, args...)...)
			require.Equal(t, 0, r.code, r.stderr)
			return r.stdout
		}
		assert.Contains(t, status("status", "ok", "--namespace", "shop"), "status trace of shop/ok: on (from the scheduler's config file)")
		assert.Contains(t, status("off", "shop/ok"), "status trace of shop/ok: off (an override")
		assert.Contains(t, status("status", "shop/ok"), "off (an override")
		assert.Contains(t, status("reset", "shop/ok"), "on (from the scheduler's config file)")
		r = runCLI(t, bin, env, "functions", "trace", "status", "shop/nope")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "not_found")
	})

	t.Run("TraceAndWide", func(t *testing.T) {
		r := runCLI(t, bin, env, "events", "get", "fail-0", "-o", "json")
		require.Equal(t, 0, r.code, r.stderr)
		var d queries.EventDetail
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &d))
		require.NotEmpty(t, d.TraceID)

		r = runCLI(t, bin, env, "trace", "fail-0", "--trace-url", "http://tempo.example/trace/{{.TraceID}}")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, "http://tempo.example/trace/"+d.TraceID+"\n", r.stdout)
		r = runCLI(t, bin, env, "trace", "fail-0")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "Trace ID: "+d.TraceID)
		r = runCLI(t, bin, env, "trace", "no-such-event")
		assert.Equal(t, 1, r.code)

		r = runCLI(t, bin, env, "events", "list", "--function", "fail", "-o", "wide")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "MESSAGE")
		assert.Contains(t, r.stdout, d.ErrorMessage)
		r = runCLI(t, bin, env, "events", "list", "--function", "fail")
		assert.NotContains(t, r.stdout, "MESSAGE")
	})

	t.Run("Completion", func(t *testing.T) {
		r := runCLI(t, bin, env, "__complete", "events", "list", "--function", "")
		require.Equal(t, 0, r.code, r.stderr)
		for _, fn := range []string{"ok", "fail", "wait"} {
			assert.Regexp(t, `(?m)^`+fn+`$`, r.stdout)
		}
		r = runCLI(t, bin, env, "__complete", "events", "list", "--status", "")
		for _, st := range append(event.PublicStatuses(), event.StateExpired.String()) {
			assert.Regexp(t, `(?m)^`+st+`$`, r.stdout)
		}
		r = runCLI(t, bin, env, "__complete", "functions", "trace", "off", "shop/")
		assert.Regexp(t, `(?m)^shop/wait$`, r.stdout)
	})

	// The README's exit codes: 0 ok, 1 failure, 2 usage error; errors are
	// one line (plus a hint where one helps), naming the flag typed.
	t.Run("ExitCodes", func(t *testing.T) {
		down := cliEnv("STATUSTRACE_SERVER=http://127.0.0.1:1", "STATUSTRACE_TOKEN="+s.APIToken)
		wrong := cliEnv("STATUSTRACE_SERVER="+s.APIURL, "STATUSTRACE_TOKEN=not-a-token-0123456789")
		for _, c := range []struct {
			env    []string
			args   []string
			code   int
			want   string
			hint   string
			reject string
		}{
			{env, []string{"--version"}, 0, "", "", ""},
			{env, []string{"events", "list", "--since", "1d"}, 0, "", "", ""},
			{env, []string{"events", "list", "--bogus"}, 2, "unknown flag: --bogus", "", ""},
			{env, []string{"evnts", "list"}, 2, `unknown command "evnts" for "statustrace" (did you mean "events"?)`, "", ""},
			{env, []string{"events", "lst"}, 2, `(did you mean "list"?)`, "", ""},
			{env, []string{"events", "get"}, 2, "accepts 1 arg(s)", "", ""},
			{env, []string{"events", "list", "--since", "-10m"}, 2, `--since "-10m": a duration ago must not be negative`, "", ""},
			{env, []string{"stats", "--since", "soon"}, 2, `--since "soon"`, "", ""},
			{env, []string{"events", "list", "--timeout", "2x"}, 2, `"--timeout" flag`, "", ""},
			{env, []string{"events", "list", "-o", "yaml"}, 2, "--output", "", ""},
			{cliEnv("STATUSTRACE_API_TOKENS="), []string{"serve"}, 2, "--token-spec", "", ""},
			{down, []string{"events", "list"}, 1, "cannot reach the statustrace API at http://127.0.0.1:1: connection refused", "--server", "/v1/"},
			{wrong, []string{"events", "list"}, 1, "refused the token", "--token", "/v1/"},
			{env, []string{"events", "get", "no-such-event"}, 1, "not_found", "", ""},
		} {
			r := runCLI(t, bin, c.env, c.args...)
			if r.code != c.code {
				t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, r.code, c.code, r.stderr)
			}
			if c.want != "" && !strings.Contains(r.stderr, c.want) {
				t.Errorf("%v: stderr %q lacks %q", c.args, r.stderr, c.want)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			switch {
			case c.code == 0:
			case c.hint != "":
				if len(lines) != 2 || !strings.HasPrefix(lines[1], "hint: ") || !strings.Contains(lines[1], c.hint) {
					t.Errorf("%v: want one line and a hint naming %s, got %q", c.args, c.hint, r.stderr)
				}
			case len(lines) != 1:
				t.Errorf("%v: want one line on stderr, got %q", c.args, r.stderr)
			}
			if c.reject != "" && strings.Contains(r.stderr, c.reject) {
				t.Errorf("%v: stderr shows the raw request (%q): %q", c.args, c.reject, r.stderr)
			}
		}
		r := runCLI(t, bin, env, "events")
		assert.Equal(t, 0, r.code)
		assert.Contains(t, r.stdout, "terminate")
	})
}
