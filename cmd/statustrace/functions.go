package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/queries"
	schedapi "github.com/statustrace/statustrace/scheduler/api"
)

func (a *app) functionsCmd() *cobra.Command {
	cmd := groupCmd(&cobra.Command{Use: "functions", Short: "List functions with their statistics; switch status trace per function"})
	cmd.AddCommand(a.functionsListCmd(), a.functionsTraceCmd())
	return cmd
}

func (a *app) functionsListCmd() *cobra.Command {
	var (
		q         queries.StatsQuery
		win       statsWindow
		durations bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Per function: events accepted, ended by status, failure rate, retries (and durations)",
		Example: `  statustrace functions list --since 3h
  statustrace functions list --namespace billing --since 1d --durations -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := win.apply(a, &q); err != nil {
				return err
			}
			return a.withSource(cmd.Context(), func(ctx context.Context, src source) error {
				fns, err := src.Functions(ctx, q, durations)
				if err != nil {
					return err
				}
				if q.Namespace != "" || q.Function != "" {
					kept := fns[:0]
					for _, f := range fns {
						if (q.Namespace == "" || f.Namespace == q.Namespace) && (q.Function == "" || f.Function == q.Function) {
							kept = append(kept, f)
						}
					}
					fns = kept
				}
				if a.output == "json" {
					return writeJSON(a.stdout, fns)
				}
				return a.printFunctions(fns, durations)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&q.Namespace, "namespace", "", "only this namespace")
	fl.StringVar(&q.Function, "function", "", "only this function")
	win.register(cmd, "series step (json output): 1m, 1h, ... (default 1m up to a 6h window, else 1h)")
	fl.BoolVar(&durations, "durations", false, "also run duration and queue-wait percentiles (per-minute digests, one query per function)")
	return cmd
}

func (a *app) printFunctions(fns []queries.FunctionSummary, durations bool) error {
	n := func(v uint64) string { return strconv.FormatUint(v, 10) }
	head := []string{"NAMESPACE", "FUNCTION", "ACCEPTED", event.PublicFinished, event.PublicFailed, event.PublicAborted, "FAILURE RATE", "RETRIES"}
	if durations {
		head = append(head, "RUN P50", "RUN P99", "WAIT P50", "WAIT P99")
	}
	t := newTable(a.stdout, head...)
	for _, f := range fns {
		row := []string{cell(f.Namespace, 24), cell(f.Function, 32), n(f.Accepted), n(f.ByStatus[event.PublicFinished]),
			n(f.ByStatus[event.PublicFailed]), n(f.ByStatus[event.PublicAborted]), pct(f.FailureRate), n(f.Retries)}
		if durations {
			if d := f.Durations; d != nil {
				row = append(row, short(d.Run.P50), short(d.Run.P99), short(d.QueueWait.P50), short(d.QueueWait.P99))
			} else {
				row = append(row, "-", "-", "-", "-")
			}
		}
		t.row(row...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(fns) == 0 {
		fmt.Fprintln(a.stdout, "no function had events in the window")
	}
	return nil
}

// actions returns the API client for actions, which go through
// `statustrace serve` (it holds the scheduler's token and checks scope).
func (a *app) actions(what string) (*api.Client, error) {
	if a.server == "" {
		return nil, usagef("%s needs --server and --token (STATUSTRACE_SERVER, STATUSTRACE_TOKEN): actions go through `statustrace serve --scheduler-url`, not ClickHouse", what)
	}
	if a.token == "" {
		return nil, usagef("--server needs --token (or STATUSTRACE_TOKEN)")
	}
	return &api.Client{BaseURL: strings.TrimRight(a.server, "/"), Token: a.token}, nil
}

// splitFunction reads FUNCTION or NAMESPACE/FUNCTION (--namespace otherwise).
func splitFunction(arg, namespace string) (string, string, error) {
	if ns, fn, ok := strings.Cut(arg, "/"); ok {
		if namespace != "" && namespace != ns {
			return "", "", usagef("%q names namespace %q but --namespace is %q", arg, ns, namespace)
		}
		namespace, arg = ns, fn
	}
	if namespace == "" {
		namespace = "default"
	}
	if arg == "" || namespace == "" {
		return "", "", usagef("%q: want FUNCTION or NAMESPACE/FUNCTION", arg)
	}
	return namespace, arg, nil
}

func (a *app) functionsTraceCmd() *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "trace on|off|status|reset FUNCTION",
		Short: "Switch status trace of a function on or off, show it, or reset it to the scheduler's config file",
		Long: `Switch status trace of a function (through statustrace serve, which calls the
scheduler's API): "off" records nothing for new events of the function until
"on" or "reset" (back to the scheduler's config file). "status" says whether
the setting in force is an override or the config file's.`,
		Example: `  statustrace functions trace status resize
  statustrace functions trace off billing/charge
  statustrace functions trace reset charge --namespace billing`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var on *bool
			switch args[0] {
			case "on", "off":
				v := args[0] == "on"
				on = &v
			case "status", "reset":
			default:
				return usagef("functions trace %q: want on, off, status or reset", args[0])
			}
			ns, fn, err := splitFunction(args[1], namespace)
			if err != nil {
				return err
			}
			c, err := a.actions("functions trace")
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
			defer cancel()
			var t *schedapi.Tracing
			if args[0] == "status" {
				t, err = c.Tracing(ctx, ns, fn)
			} else {
				t, err = c.SetTracing(ctx, ns, fn, on)
			}
			if err != nil {
				return err
			}
			if a.output == "json" {
				return writeJSON(a.stdout, t)
			}
			state := "off"
			if t.Enabled {
				state = "on"
			}
			from := "from the scheduler's config file"
			if t.Source == schedapi.TracingOverride {
				from = "an override set through the API; `statustrace functions trace reset " + ns + "/" + fn + "` returns to the config file"
			}
			fmt.Fprintf(a.stdout, "status trace of %s/%s: %s (%s)\n", ns, fn, state, from)
			return nil
		},
	}
	cmd.Flags().StringVar(&namespace, "namespace", "", "the function's namespace (default \"default\"; or write NAMESPACE/FUNCTION)")
	return cmd
}
