package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/internal/console"
	"github.com/statustrace/statustrace/queries"
	schedapi "github.com/statustrace/statustrace/scheduler/api"
)

func (a *app) eventsWatchCmd() *cobra.Command {
	var (
		f                     queries.ListFilter
		statuses, invokeTypes []string
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print events as their status changes, live, until Ctrl-C (-o json: one JSON line per change)",
		Example: `  statustrace events watch --function resize
  statustrace events watch --status FAILED -o json | jq .request_id`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.Statuses, f.InvokeTypes = statuses, invokeTypes
			if err := f.Validate(); err != nil {
				return err
			}
			if err := api.CheckFilterValues(&f); err != nil {
				return err
			}
			src, err := a.source(cmd.Context())
			if err != nil {
				return err
			}
			defer src.Close()
			if a.output != "json" {
				fmt.Fprintln(a.stderr, "watching for changes (Ctrl-C stops)")
			}
			seen := map[string]uint64{}
			return src.Watch(cmd.Context(), f, func(e queries.Event) error {
				if seen[e.RequestID] >= e.LastSeq {
					return nil // a change may come twice
				}
				seen[e.RequestID] = e.LastSeq
				return a.printChange(e)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Namespace, "namespace", "", "namespace")
	fl.StringVar(&f.Function, "function", "", "function name")
	fl.StringVar(&f.Qualifier, "qualifier", "", "version or alias")
	fl.StringVar(&f.RequestID, "request-id", "", "one request ID")
	fl.StringSliceVar(&statuses, "status", nil, "RUNNING, FINISHED, FAILED, ABORTED or a detailed state (repeat or comma-separate)")
	fl.StringArrayVar(&invokeTypes, "invoke-type", nil, "invocation type (repeatable)")
	return cmd
}

// printChange writes one change: a line for people or a JSON line.
func (a *app) printChange(e queries.Event) error {
	if a.output == "json" {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", b)
		return err
	}
	errText := ""
	if e.ErrorCode != "" || e.ErrorMessage != "" {
		errText = "  " + cell(e.ErrorCode, 24) + ": " + cell(e.ErrorMessage, 80)
	}
	_, err := fmt.Fprintf(a.stdout, "%s  %s  %s (%s)  %s/%s  attempt %d%s\n", e.LastTime.UTC().Format("2006-01-02 15:04:05.000"),
		cell(e.RequestID, 0), e.Status, e.State, cell(e.Namespace, 0), cell(e.Function, 0), e.Attempts, errText)
	return err
}

// watchEvent follows one event after `events get -w` printed it: each new
// transition as a line, until the event ends or ctx does.
func (a *app) watchEvent(ctx context.Context, src source, d *queries.EventDetail) error {
	last := uint64(0)
	for _, tr := range d.Timeline {
		last = max(last, tr.Seq)
	}
	if ended(d.State) {
		return nil
	}
	if a.output != "json" {
		fmt.Fprintln(a.stdout, "\nwatching for changes until the event ends (Ctrl-C stops)")
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done bool
	err := src.Watch(wctx, queries.ListFilter{RequestID: d.RequestID}, func(e queries.Event) error {
		if e.LastSeq <= last {
			return nil
		}
		nd, err := src.Get(wctx, d.RequestID)
		if err != nil {
			return err
		}
		for _, tr := range nd.Timeline {
			if tr.Seq <= last {
				continue
			}
			last = tr.Seq
			if err := a.printTransition(tr); err != nil {
				return err
			}
		}
		if ended(nd.State) {
			done = true
			cancel()
		}
		return nil
	})
	if err == nil && !done && ctx.Err() == nil {
		return fmt.Errorf("live: the stream ended before the event did")
	}
	return err
}

func (a *app) printTransition(tr queries.Transition) error {
	if a.output == "json" {
		b, err := json.Marshal(tr)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", b)
		return err
	}
	after := ""
	if tr.InState > 0 {
		after = "  after " + short(tr.InState) + " in " + tr.FromState
	}
	errText := ""
	if tr.ErrorCode != "" || tr.ErrorMessage != "" {
		errText = "  " + cell(tr.ErrorCode, 24) + ": " + cell(tr.ErrorMessage, 80)
	}
	_, err := fmt.Fprintf(a.stdout, "%s  seq %d  %s  attempt %d%s%s\n", tr.Time.UTC().Format("2006-01-02 15:04:05.000"), tr.Seq, tr.ToState, tr.Attempt, after, errText)
	return err
}

func ended(state string) bool {
	s, err := event.ParseState(state)
	return err == nil && s.Terminal()
}

func (a *app) eventsTerminateCmd() *cobra.Command {
	var immediate bool
	cmd := &cobra.Command{
		Use:   "terminate REQUEST_ID",
		Short: "Stop a running event: graceful (the function's grace period) or --immediate",
		Long: `Stop a running event through statustrace serve (which calls the scheduler's
API with the caller's scope): graceful by default (TERMINATING, then ABORTED
after the function's grace period), --immediate stops it at once.`,
		Example: `  statustrace events terminate 5f825fd3-a59d-4879-aa28-3ac967c12888
  statustrace events terminate req-1 --immediate`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.actions("events terminate")
			if err != nil {
				return err
			}
			mode := schedapi.Graceful
			if immediate {
				mode = schedapi.Immediate
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
			defer cancel()
			res, err := c.Terminate(ctx, args[0], mode)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return writeJSON(a.stdout, res)
			}
			fmt.Fprintf(a.stdout, "terminate requested (%s): %s is %s\n", mode, cell(args[0], 0), res.State)
			return nil
		},
	}
	cmd.Flags().BoolVar(&immediate, "immediate", false, "stop at once instead of after the function's grace period")
	return cmd
}

func (a *app) traceCmd() *cobra.Command {
	var traceURL string
	cmd := &cobra.Command{
		Use:   "trace REQUEST_ID",
		Short: "An event's trace: its link (--trace-url or STATUSTRACE_TRACE_URL) or its spans from otel_traces",
		Example: `  statustrace trace req-1
  statustrace trace req-1 --trace-url 'http://jaeger:16686/trace/{{.TraceID}}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if traceURL == "" {
				traceURL = a.getenv("STATUSTRACE_TRACE_URL")
			}
			tmpl, err := console.ParseTraceURL(traceURL)
			if err != nil {
				return usagef("--trace-url: %v", err)
			}
			return a.withSource(cmd.Context(), func(ctx context.Context, src source) error {
				tr, err := src.Trace(ctx, args[0])
				if err != nil {
					return err
				}
				if tr.TraceID == "" {
					return fmt.Errorf("event %s has no trace ID", cell(args[0], 0))
				}
				if tmpl != nil {
					u, err := console.RenderTraceURL(tmpl, tr.TraceID)
					if err != nil {
						return err
					}
					if a.output == "json" {
						return writeJSON(a.stdout, map[string]string{"request_id": tr.RequestID, "trace_id": tr.TraceID, "url": u})
					}
					fmt.Fprintln(a.stdout, u)
					return nil
				}
				if a.output == "json" {
					return writeJSON(a.stdout, tr)
				}
				fmt.Fprintf(a.stdout, "Trace ID: %s\n", tr.TraceID)
				if len(tr.Spans) == 0 {
					fmt.Fprintln(a.stdout, "no spans in otel_traces (the collector's full-trace pipeline is off, or they aged out); --trace-url prints a link instead")
					return nil
				}
				fmt.Fprintln(a.stdout)
				t := newTable(a.stdout, "START", "DURATION", "SERVICE", "NAME", "KIND", "STATUS", "SPAN", "PARENT")
				for _, s := range tr.Spans {
					status := s.StatusCode
					if s.StatusMessage != "" {
						status += ": " + s.StatusMessage
					}
					t.row(s.Time.UTC().Format("15:04:05.000"), short(s.Duration), cell(s.Service, 24), cell(s.Name, 40),
						cell(strings.TrimPrefix(s.Kind, "SPAN_KIND_"), 12), cell(status, 40), cell(s.SpanID, 0), cell(s.ParentSpanID, 0))
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&traceURL, "trace-url", "", "print this link instead of the spans: a template with {{.TraceID}}, as `serve --trace-url` (env STATUSTRACE_TRACE_URL)")
	return cmd
}
