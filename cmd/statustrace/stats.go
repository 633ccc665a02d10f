package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/queries"
)

// window reads --since or --from/--to into a required time range.
func (a *app) window(since, from, to string) (queries.TimeRange, error) {
	var w queries.TimeRange
	var err error
	if since != "" && from != "" {
		return w, usagef("--since and --from both set the start of the window")
	}
	fromFlag := "from"
	if since != "" {
		from, fromFlag = since, "since"
	}
	if w.From, err = a.parseWhen(fromFlag, from); err != nil {
		return w, err
	}
	if w.To, err = a.parseWhen("to", to); err != nil {
		return w, err
	}
	if w.From.IsZero() {
		return w, usagef("no window: set --since (e.g. 3h) or --from")
	}
	if w.To.IsZero() {
		w.To = a.now().UTC()
	}
	return w, nil
}

func (a *app) statsCmd() *cobra.Command {
	var (
		q                     queries.StatsQuery
		win                   statsWindow
		durations, showSeries bool
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Counts per status, failure rate, retries, top errors and a series for a window",
		Example: `  statustrace stats --function resize --since 3h
  statustrace stats --namespace billing --since 72h --step 1h --series
  statustrace stats --function resize --since 1h --durations -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := win.apply(a, &q); err != nil {
				return err
			}
			return a.withSource(cmd.Context(), func(ctx context.Context, src source) error {
				st, err := src.Stats(ctx, q, durations)
				if err != nil {
					return err
				}
				if a.output == "json" {
					return writeJSON(a.stdout, st)
				}
				return a.printStats(st, showSeries)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&q.Namespace, "namespace", "", "namespace (default: all the tenant's)")
	fl.StringVar(&q.Function, "function", "", "function name (default: all)")
	fl.StringVar(&q.Qualifier, "qualifier", "", "version or alias (default: all)")
	win.register(cmd, "series step: 1m, 1h, ... (default 1m up to a 6h window, else 1h)")
	fl.BoolVar(&durations, "durations", false, "also queue-wait, run, retry-delay and end-to-end percentiles (from per-minute digests, within 1%)")
	fl.BoolVar(&showSeries, "series", false, "print the series too")
	return cmd
}

// statsWindow is the window flags of the statistics commands (stats,
// functions list): --since (default 1h), --from, --to and --step.
type statsWindow struct{ since, from, to, step string }

// register adds the flags to cmd; --from replaces the --since default.
func (w *statsWindow) register(cmd *cobra.Command, stepHelp string) {
	fl := cmd.Flags()
	fl.StringVar(&w.since, "since", "1h", "window: from this long ago until now (or --from/--to)")
	fl.StringVar(&w.from, "from", "", "window start (RFC 3339, Unix ms or a duration ago)")
	fl.StringVar(&w.to, "to", "", "window end (default now)")
	fl.StringVar(&w.step, "step", "", stepHelp)
	cmd.PreRun = func(cmd *cobra.Command, _ []string) {
		if cmd.Flags().Changed("from") && !cmd.Flags().Changed("since") {
			w.since = ""
		}
	}
}

// apply parses the flags into q's window and step and validates q.
func (w *statsWindow) apply(a *app, q *queries.StatsQuery) error {
	var err error
	if q.Window, err = a.window(w.since, w.from, w.to); err != nil {
		return err
	}
	if q.Step, err = api.ParseStep(w.step); err != nil {
		return err
	}
	return q.Validate()
}

// stateOrder sorts detailed states in their lifecycle order.
func stateOrder(states map[string]uint64) []string {
	out := make([]string, 0, len(states))
	for s := range states {
		out = append(out, s)
	}
	rank := func(s string) int {
		st, err := event.ParseState(s)
		if err != nil {
			return 100
		}
		return int(st)
	}
	sort.Slice(out, func(i, j int) bool {
		if rank(out[i]) != rank(out[j]) {
			return rank(out[i]) < rank(out[j])
		}
		return out[i] < out[j]
	})
	return out
}

func (a *app) printStats(st *queries.Stats, showSeries bool) error {
	n := func(v uint64) string { return strconv.FormatUint(v, 10) }
	fmt.Fprintf(a.stdout, "Window: %s .. %s (%s)\n\n", st.From.Format(time.RFC3339), st.To.Format(time.RFC3339), short(st.To.Sub(st.From)))
	kv := newTable(a.stdout, "Accepted:", n(st.Accepted))
	kv.row("Finished:", n(st.ByStatus[event.PublicFinished]))
	kv.row("Failed:", n(st.ByStatus[event.PublicFailed])+" (incl. expired: "+n(st.ByState[event.StateExpired.String()])+")")
	kv.row("Aborted:", n(st.ByStatus[event.PublicAborted]))
	kv.row("Failure rate:", pct(st.FailureRate))
	kv.row("Attempts:", n(st.Attempts))
	kv.row("Retries:", n(st.Retries))
	if err := kv.flush(); err != nil {
		return err
	}
	if st.Backlog != nil {
		fmt.Fprintln(a.stdout)
		if len(st.Backlog) == 0 {
			fmt.Fprintln(a.stdout, "Waiting now: none")
		} else {
			t := newTable(a.stdout, "WAITING NOW", "EVENTS", "OLDEST AGE", "OLDEST ACCEPTED")
			for _, b := range st.Backlog {
				t.row(cell(b.Namespace+"/"+b.Function+":"+b.Qualifier, 60), n(b.Waiting),
					short(time.Duration(b.OldestAgeSeconds*float64(time.Second))), b.OldestAcceptedAt.Format(time.RFC3339))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
	if d := st.Durations; d != nil {
		fmt.Fprintln(a.stdout)
		// The counts above are exact for the window; the percentiles come
		// from per-minute digests, so say which minutes they cover.
		if from, to := st.From.Truncate(time.Minute), st.To.Add(time.Minute-1).Truncate(time.Minute); !from.Equal(st.From) || !to.Equal(st.To) {
			fmt.Fprintf(a.stdout, "Durations cover the whole minutes %s .. %s (per-minute digests)\n", from.Format(time.RFC3339), to.Format(time.RFC3339))
		}
		t := newTable(a.stdout, "DURATION", "COUNT", "P50", "P90", "P99")
		t.row("queue wait", n(d.QueueWaits), short(d.QueueWait.P50), short(d.QueueWait.P90), short(d.QueueWait.P99))
		t.row("run (per attempt)", n(d.Runs), short(d.Run.P50), short(d.Run.P90), short(d.Run.P99))
		t.row("retry delay", n(d.RetryDelays), short(d.RetryDelay.P50), short(d.RetryDelay.P90), short(d.RetryDelay.P99))
		t.row("end to end", n(d.EndToEnds), short(d.EndToEnd.P50), short(d.EndToEnd.P90), short(d.EndToEnd.P99))
		if err := t.flush(); err != nil {
			return err
		}
		if d.MaxRelativeError > 0 {
			fmt.Fprintf(a.stdout, "(percentiles from per-minute digests, within %.1f%%)\n", d.MaxRelativeError*100)
		}
	}
	if len(st.Errors) > 0 {
		fmt.Fprintln(a.stdout)
		t := newTable(a.stdout, "ERROR CODE", "STATE", "COUNT")
		for _, e := range st.Errors {
			t.row(cell(e.Code, 40), e.State, n(e.Count))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if showSeries && len(st.Series) > 0 {
		fmt.Fprintln(a.stdout)
		states := stateOrder(st.ByState)
		t := newTable(a.stdout, append(append([]string{"TIME"}, states...), "FAILURE RATE")...)
		for _, p := range st.Series {
			row := []string{p.Time.Format("2006-01-02 15:04")}
			for _, s := range states {
				row = append(row, n(p.ByState[s]))
			}
			t.row(append(row, pct(p.FailureRate))...)
		}
		return t.flush()
	}
	return nil
}
