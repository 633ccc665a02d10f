package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/queries"
)

func (a *app) exportCmd() *cobra.Command {
	var (
		r                     api.ExportRequest
		kind, since, from, to string
		out, order            string
		statuses, invokeTypes []string
		namespace, function   string
		qualifier             string
		quiet                 bool
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a window as NDJSON (one event or transition per line), to keep beyond retention",
		Example: `  statustrace export --since 24h --out events-$(date +%F).ndjson
  statustrace export --kind transitions --from 2026-01-01T00:00:00Z --to 2026-01-02T00:00:00Z --out day.ndjson
  statustrace export --function resize --status FAILED --since 72h | jq .request_id`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := a.window(since, from, to)
			if err != nil {
				return err
			}
			switch kind {
			case api.KindEvents:
				r = api.ExportRequest{Kind: kind, Events: queries.ListFilter{
					Namespace: namespace, Function: function, Qualifier: qualifier,
					Statuses: statuses, InvokeTypes: invokeTypes, Start: w,
				}}
				if r.Events.Desc, err = queries.ParseDesc(order); err != nil {
					return err
				}
				if err := r.Events.Validate(); err != nil {
					return err
				}
				if err := api.CheckFilterValues(&r.Events); err != nil {
					return err
				}
			case api.KindTransitions:
				if len(statuses) > 0 || len(invokeTypes) > 0 {
					return usagef("--status and --invoke-type apply to --kind events only")
				}
				r = api.ExportRequest{Kind: kind, Window: queries.WindowFilter{Namespace: namespace, Function: function, Qualifier: qualifier, Window: w}}
				if err := r.Window.Validate(); err != nil {
					return err
				}
			default:
				return usagef("--kind %q: want events or transitions", kind)
			}
			src, err := a.source(cmd.Context())
			if err != nil {
				return err
			}
			defer src.Close()
			dst := a.stdout
			var file *os.File
			if out != "" && out != "-" {
				// Write to a temporary name and rename at the end, so a failed
				// export never leaves a file that looks complete.
				file, err = os.CreateTemp(dirOf(out), ".statustrace-export-*")
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				defer os.Remove(file.Name()) // no-op after the rename
				defer file.Close()
				dst = file
			}
			var p *progress
			if file != nil && !quiet {
				p = newProgress(a.stderr, isTerminal(a.stderr), a.now)
			}
			err = src.Export(cmd.Context(), r, dst, p.setTotal, p.add)
			p.finish(err)
			if err != nil {
				return err
			}
			if file != nil {
				if err := file.Sync(); err != nil {
					return fmt.Errorf("export: %w", err)
				}
				if err := file.Close(); err != nil {
					return fmt.Errorf("export: %w", err)
				}
				if err := os.Rename(file.Name(), out); err != nil {
					return fmt.Errorf("export: %w", err)
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&kind, "kind", api.KindEvents, "events (one line per event, window on start time) or transitions (one line per state change)")
	fl.StringVar(&since, "since", "", "window: from this long ago until now")
	fl.StringVar(&from, "from", "", "window start (RFC 3339, Unix ms or a duration ago)")
	fl.StringVar(&to, "to", "", "window end (default now)")
	fl.StringVar(&out, "out", "", "file to write (default stdout); shows a progress bar on stderr")
	fl.StringVar(&namespace, "namespace", "", "namespace")
	fl.StringVar(&function, "function", "", "function name")
	fl.StringVar(&qualifier, "qualifier", "", "version or alias")
	fl.StringSliceVar(&statuses, "status", nil, "statuses (events only)")
	fl.StringArrayVar(&invokeTypes, "invoke-type", nil, "invocation types (events only)")
	fl.StringVar(&order, "order", "asc", "asc (oldest first) or desc (events only)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, os.PathSeparator); i >= 0 {
		return path[:i+1]
	}
	return "."
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress draws "[=====>    ] 1234/5000 25%" on a terminal, redrawn at most
// ten times a second, and otherwise prints one summary line at the end. All
// methods accept a nil receiver (no progress wanted).
type progress struct {
	w        io.Writer
	tty      bool
	now      func() time.Time
	start    time.Time
	total    atomic.Uint64
	done     atomic.Uint64
	lastDraw time.Time
}

func newProgress(w io.Writer, tty bool, now func() time.Time) *progress {
	return &progress{w: w, tty: tty, now: now, start: now()}
}

func (p *progress) setTotal(n uint64) {
	if p == nil {
		return
	}
	p.total.Store(n)
	p.draw(true)
}

func (p *progress) add() {
	if p == nil {
		return
	}
	p.done.Add(1)
	p.draw(false)
}

// bar renders the current state.
func (p *progress) bar() string {
	const width = 30
	done, total := p.done.Load(), p.total.Load()
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	filled := int(frac * width)
	b := strings.Repeat("=", filled)
	if filled < width {
		b += ">" + strings.Repeat(" ", width-filled-1)
	}
	return fmt.Sprintf("[%s] %d/%d %3.0f%%", b, done, total, frac*100)
}

func (p *progress) draw(force bool) {
	if !p.tty {
		return
	}
	now := p.now()
	if !force && now.Sub(p.lastDraw) < 100*time.Millisecond {
		return
	}
	p.lastDraw = now
	fmt.Fprintf(p.w, "\r%s", p.bar())
}

func (p *progress) finish(err error) {
	if p == nil {
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\n", p.bar())
	}
	if err != nil {
		fmt.Fprintf(p.w, "export failed after %d lines\n", p.done.Load())
		return
	}
	fmt.Fprintf(p.w, "exported %d lines in %s\n", p.done.Load(), short(p.now().Sub(p.start)))
}
