// Package demo is `make demo`: the whole statustrace pipeline on this
// machine (internal/stack), a few thousand invocations with a realistic mix
// of outcomes, and the result as the CLI shows it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/queries"
)

// Options of a demo run.
type Options struct {
	Root        string // module root
	BinDir      string // built binaries (`make build`)
	WorkDir     string // logs, configs, the scheduler's database; replaced on each run
	Database    string // ClickHouse database, dropped and recreated
	Invocations int
	// Wait keeps everything running after the summary until ctx ends
	// (Ctrl-C); otherwise Run stops and returns.
	Wait bool
	Out  io.Writer
	// Screenshots, when set, is a directory that receives a PNG of each
	// console page (headless Chromium), taken after the summary.
	Screenshots string
}

// Run runs the demo. Whatever happens, and whenever ctx is cancelled, the
// processes it started are stopped before it returns.
func Run(ctx context.Context, o Options) (err error) {
	began := time.Now()
	say := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }

	bins, err := stack.BinariesIn(o.BinDir)
	if err == nil && bins.Statustrace == "" {
		err = fmt.Errorf("no %s/statustrace", o.BinDir)
	}
	if err != nil {
		return fmt.Errorf("%w (run `make build` first)", err)
	}
	dsn, local, err := stack.ResolveDSN(ctx, o.Root)
	if err != nil {
		return err
	}
	if local {
		say("ClickHouse: the local endpoint (deploy/local, embedded ClickHouse, data in memory) at %s", dsn)
	} else {
		say("ClickHouse: CLICKHOUSE_DSN (%s)", dsnForHumans(dsn))
	}
	if err := stack.RecreateDatabase(ctx, dsn, o.Database); err != nil {
		return err
	}
	say("database %s: created empty (the collector applies the schema migrations)", o.Database)
	if err := os.RemoveAll(o.WorkDir); err != nil {
		return fmt.Errorf("work dir: %w", err)
	}

	s, err := stack.Start(ctx, stack.Options{
		Root: o.Root, Bin: bins, WorkDir: o.WorkDir, DSN: dsn, Database: o.Database,
		Scheduler: SchedulerConfig(),
		Logf:      func(f string, a ...any) { say(f, a...) },
	})
	if err != nil {
		return err
	}
	defer func() {
		say("\nstopping the scheduler, the API and the collector...")
		if stopErr := s.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
			return
		}
		say("stopped: nothing of the demo is left running.")
		if local {
			say("The local ClickHouse endpoint stays up with the demo's data; `make clickhouse-stop` stops it (the native engine keeps its data for the next start), `make clickhouse-wipe` removes the data too.")
		}
	}()
	say("pipeline up in %s; logs in %s", time.Since(began).Round(100*time.Millisecond), o.WorkDir)
	say("console: %s/ui/  (sign in with the token %s)", s.APIURL, s.APIToken)

	ac := &api.Client{BaseURL: s.APIURL, Token: s.APIToken}

	say("\nfiring %d invocations (checkout, send-receipt, thumbnail, refund, export, reindex) and bursts at search/suggest:", o.Invocations)
	sc := stack.NewSchedulerClient(s.SchedulerURL, s.SchedulerToken)
	res, err := Fire(ctx, sc, stack.NewSchedulerClient(s.SchedulerURL, s.SchedulerAdminToken), o.Invocations, func(f string, a ...any) { say(f, a...) })
	if err != nil {
		return err
	}

	say("\nwaiting for every event to settle (retries back off %s, reports/export and reports/digest expire after %s)...", retryWait, exportAge)
	if err := waitSettled(ctx, say, s, ac, uint64(res.Accepted)); err != nil {
		return err
	}

	if err := present(ctx, o.Out, s, bins.Statustrace, res); err != nil {
		return err
	}
	if o.Screenshots != "" {
		say("\nscreenshots of the console (headless Chromium):")
		if err := screenshots(ctx, say, s, o.Screenshots); err != nil {
			return err
		}
	}
	say("\ndemo ran in %s.", time.Since(began).Round(time.Second))
	nextSteps(o.Out, s, dsn, o)

	if !o.Wait {
		say("\n(No terminal on stdin, or -exit: everything stops now. Run `make demo` in a terminal to keep it up and try the above.)")
		return nil
	}
	// One event keeps running, for a terminate from the console.
	if code, _, err := sc.Invoke(ctx, stack.Invocation{Namespace: nsBatch, Function: fnReindex, RequestID: "reindex-try-me", Payload: []byte(`{}`)}); err == nil && code == http.StatusAccepted {
		say("\nbatch/reindex event reindex-try-me runs until terminated: open %s/ui/events/reindex-try-me and press Terminate; the page follows it live.", s.APIURL)
	}
	say("\nEverything keeps running. Press Ctrl-C to stop.")
	select {
	case <-ctx.Done():
		return nil
	case <-s.Scheduler.Done():
		return fmt.Errorf("the scheduler exited; see %s", s.Scheduler.LogPath)
	case <-s.Collector.Done():
		return fmt.Errorf("the collector exited; see %s", s.Collector.LogPath)
	}
}

// waitSettled polls the API until the accepted events are all there and
// none is still running.
func waitSettled(ctx context.Context, say func(string, ...any), s *stack.Stack, ac *api.Client, accepted uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	lastSay := time.Time{}
	var events, running uint64
	for {
		all, err := ac.List(ctx, queries.ListFilter{Limit: 1})
		if err == nil {
			events = all.Total
			var run *queries.Page
			if run, err = ac.List(ctx, queries.ListFilter{Limit: 1, Statuses: []string{event.PublicRunning}}); err == nil {
				running = run.Total
			}
		}
		if err == nil && events == accepted && running == 0 {
			say("  all %d events recorded and ended (%s)", accepted, time.Since(start).Round(100*time.Millisecond))
			return nil
		}
		if time.Since(lastSay) >= 3*time.Second {
			if err != nil && ctx.Err() == nil {
				say("  (%v)", err)
			} else if err == nil {
				say("  %d/%d events recorded, %d still running", events, accepted, running)
			}
			if e := lastExportError(s.Collector.LogPath); e != "" && time.Since(start) > 5*time.Second {
				say("  the collector reports: %s", e)
			}
			lastSay = time.Now()
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("events did not settle within 2m (%d/%d recorded, %d running); see the logs in %s",
					events, accepted, running, filepath.Dir(s.Collector.LogPath))
			}
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// lastExportError returns the error of the collector's last failed export
// in its log, if any.
func lastExportError(logPath string) string {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(data), "\n")
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-200; i-- {
		if j := strings.Index(lines[i], `"error": "`); j >= 0 && strings.Contains(lines[i], "Exporting failed") {
			msg := lines[i][j+10:]
			if k := strings.Index(msg, `"`); k >= 0 {
				msg = msg[:k]
			}
			return oneLine(msg)
		}
	}
	return ""
}

func oneLine(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
