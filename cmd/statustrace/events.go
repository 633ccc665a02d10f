package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/queries"
)

func (a *app) eventsCmd() *cobra.Command {
	cmd := groupCmd(&cobra.Command{Use: "events", Short: "List, look up, watch and terminate async events"})
	cmd.AddCommand(a.eventsListCmd(), a.eventsGetCmd(), a.eventsWatchCmd(), a.eventsTerminateCmd())
	return cmd
}

func (a *app) eventsListCmd() *cobra.Command {
	var (
		f                                                  queries.ListFilter
		statuses, invokeTypes                              []string
		since, startFrom, startTo, endFrom, endTo, orderBy string
		order                                              string
		all                                                bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List events, newest first (filters, paging, -o json)",
		Example: `  statustrace events list --function resize --status FAILED --since 3h
  statustrace events list --namespace billing --order-by end_time --order asc --limit 100 -o json
  statustrace events list --cursor <next_cursor from the previous page>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			f.Statuses, f.InvokeTypes = statuses, invokeTypes
			if since != "" && startFrom != "" {
				return usagef("--since and --start-from both set the start of the range")
			}
			fromFlag := "start-from"
			if since != "" {
				startFrom, fromFlag = since, "since"
			}
			for _, p := range []struct {
				flag, v string
				dst     *time.Time
			}{{fromFlag, startFrom, &f.Start.From}, {"start-to", startTo, &f.Start.To}, {"end-from", endFrom, &f.End.From}, {"end-to", endTo, &f.End.To}} {
				if *p.dst, err = a.parseWhen(p.flag, p.v); err != nil {
					return err
				}
			}
			if f.OrderBy, err = queries.ParseOrderBy(orderBy); err != nil {
				return err
			}
			if f.Desc, err = queries.ParseDesc(order); err != nil {
				return err
			}
			if err := f.Validate(); err != nil {
				return err
			}
			if err := api.CheckFilterValues(&f); err != nil {
				return err
			}
			return a.withSource(cmd.Context(), func(ctx context.Context, src source) error {
				page, err := src.List(ctx, f)
				if err != nil {
					return err
				}
				if all {
					// Follow the cursor; the total stays the first page's.
					for page.NextCursor != "" && len(page.Events) < 100_000 {
						f.Cursor, f.Offset = page.NextCursor, 0
						next, err := src.List(ctx, f)
						if err != nil {
							return err
						}
						page.Events = append(page.Events, next.Events...)
						page.NextCursor = next.NextCursor
					}
				}
				if a.output == "json" {
					return writeJSON(a.stdout, page)
				}
				return a.printEvents(page, f)
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
	fl.StringVar(&since, "since", "", "started at most this long ago (e.g. 3h); same as --start-from 3h")
	fl.StringVar(&startFrom, "start-from", "", "started at or after (RFC 3339, Unix ms, or a duration ago)")
	fl.StringVar(&startTo, "start-to", "", "started before")
	fl.StringVar(&endFrom, "end-from", "", "ended at or after")
	fl.StringVar(&endTo, "end-to", "", "ended before")
	fl.StringVar(&orderBy, "order-by", "start_time", "start_time or end_time")
	fl.StringVar(&order, "order", "desc", "asc or desc")
	fl.Uint64Var(&f.Offset, "offset", 0, "skip this many events")
	fl.IntVar(&f.Limit, "limit", queries.DefaultLimit, "events per page (1..100)")
	fl.StringVar(&f.Cursor, "cursor", "", "continue after the page that printed this cursor")
	fl.BoolVar(&all, "all", false, "follow the cursor and print every page")
	return cmd
}

func (a *app) printEvents(p *queries.Page, f queries.ListFilter) error {
	now := a.now()
	head := []string{"REQUEST ID", "STATUS", "STATE", "FUNCTION", "QUALIFIER", "NAMESPACE", "STARTED", "DURATION", "TRIES", "ERROR"}
	wide := a.output == "wide"
	if wide {
		head = append(head, "MESSAGE", "NODE", "TRACE ID")
	}
	t := newTable(a.stdout, head...)
	for _, e := range p.Events {
		dur := "-"
		if e.EndTime != nil {
			dur = short(e.EndTime.Sub(e.StartTime))
		} else {
			dur = short(now.Sub(e.StartTime)) + " so far"
		}
		row := []string{cell(e.RequestID, 40), e.Status, e.State, cell(e.Function, 24), cell(e.Qualifier, 12), cell(e.Namespace, 16),
			ago(now, e.StartTime), dur, strconv.FormatUint(uint64(e.Attempts), 10), cell(e.ErrorCode, 24)}
		if wide {
			row = append(row, cell(e.ErrorMessage, 80), cell(e.Node, 20), cell(e.TraceID, 0))
		}
		t.row(row...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	first := f.Offset + 1
	if len(p.Events) == 0 {
		fmt.Fprintf(a.stdout, "no events (%d match)\n", p.Total)
		return nil
	}
	if f.Cursor != "" {
		fmt.Fprintf(a.stdout, "%d events after the cursor, %d match in all\n", len(p.Events), p.Total)
	} else {
		fmt.Fprintf(a.stdout, "events %d-%d of %d\n", first, f.Offset+uint64(len(p.Events)), p.Total)
	}
	if p.NextCursor != "" {
		fmt.Fprintf(a.stdout, "next page: --cursor %s\n", p.NextCursor)
	}
	return nil
}

func (a *app) eventsGetCmd() *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "get REQUEST_ID",
		Short: "Show an event's status and its timeline (-w: then follow it until it ends)",
		Example: `  statustrace events get 5f825fd3-a59d-4879-aa28-3ac967c12888
  statustrace events get req-1 -w`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			run := func(ctx context.Context, src source) error {
				d, err := src.Get(ctx, args[0])
				if err != nil {
					return err
				}
				if a.output == "json" {
					err = writeJSON(a.stdout, d)
				} else {
					err = a.printEvent(d)
				}
				if err != nil || !watch {
					return err
				}
				return a.watchEvent(ctx, src, d)
			}
			if !watch {
				return a.withSource(cmd.Context(), run)
			}
			// Watching has no overall timeout: it ends with the event or Ctrl-C.
			src, err := a.source(cmd.Context())
			if err != nil {
				return err
			}
			defer src.Close()
			return run(cmd.Context(), src)
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "after printing the event, print each new transition until it ends")
	return cmd
}

func (a *app) printEvent(d *queries.EventDetail) error {
	now := a.now()
	end := "-"
	if d.EndTime != nil {
		end = fmt.Sprintf("%s (%s, took %s)", d.EndTime.Format(time.RFC3339Nano), ago(now, *d.EndTime), short(d.EndTime.Sub(d.StartTime)))
	}
	kv := newTable(a.stdout, "Request ID:", cell(d.RequestID, 0))
	kv.row("Status:", d.Status+" ("+d.State+")")
	kv.row("Function:", cell(d.Function, 0)+" @ "+cell(d.Qualifier, 0)+" in namespace "+cell(d.Namespace, 0))
	kv.row("Invoke type:", cell(d.InvokeType, 0))
	kv.row("Started:", fmt.Sprintf("%s (%s)", d.StartTime.Format(time.RFC3339Nano), ago(now, d.StartTime)))
	kv.row("Ended:", end)
	kv.row("Attempts:", strconv.FormatUint(uint64(d.Attempts), 10))
	kv.row("Errors:", strconv.FormatUint(d.Errors, 10))
	if d.ErrorCode != "" || d.ErrorMessage != "" {
		kv.row("Last error:", cell(d.ErrorCode, 0)+": "+cell(d.ErrorMessage, 200))
	}
	kv.row("Trace ID:", cell(d.TraceID, 0))
	if err := kv.flush(); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	t := newTable(a.stdout, "SEQ", "STATE", "AT", "WHEN", "AFTER", "ATTEMPT", "NODE", "ERROR")
	for _, tr := range d.Timeline {
		after := "-"
		if tr.InState > 0 {
			after = short(tr.InState) + " in " + tr.FromState
		}
		errText := "-"
		if tr.ErrorCode != "" || tr.ErrorMessage != "" {
			errText = cell(tr.ErrorCode, 24) + ": " + cell(tr.ErrorMessage, 60)
		}
		t.row(strconv.FormatUint(tr.Seq, 10), tr.ToState, tr.Time.Format("2006-01-02 15:04:05.000"), ago(now, tr.Time), after,
			strconv.FormatUint(uint64(tr.Attempt), 10), cell(tr.Node, 20), errText)
	}
	return t.flush()
}
