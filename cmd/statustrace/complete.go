package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/queries"
)

// completions teaches the shell completion (`statustrace completion bash`
// etc., from cobra) the values of --status, --output, and the function and
// namespace names, which it asks the configured source for (the last 3
// days' functions; nothing when the source cannot answer within 3 s).
func (a *app) completions(root *cobra.Command) {
	statuses := slices.Clone(event.PublicStatuses())
	for _, s := range event.States() {
		if !slices.Contains(statuses, s.String()) {
			statuses = append(statuses, s.String())
		}
	}
	fixed := func(vals []string) cobra.CompletionFunc {
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return vals, cobra.ShellCompDirectiveNoFileComp
		}
	}
	_ = root.RegisterFlagCompletionFunc("output", fixed([]string{"table", "wide", "json"}))
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("status") != nil {
			_ = c.RegisterFlagCompletionFunc("status", fixed(statuses))
		}
		if c.Flags().Lookup("function") != nil {
			_ = c.RegisterFlagCompletionFunc("function", a.completeNames(func(f queries.FunctionSummary) string { return f.Function }))
		}
		if c.Flags().Lookup("namespace") != nil {
			_ = c.RegisterFlagCompletionFunc("namespace", a.completeNames(func(f queries.FunctionSummary) string { return f.Namespace }))
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if tr, _, err := root.Find([]string{"functions", "trace"}); err == nil && tr.Name() == "trace" {
		qualified := a.completeNames(func(f queries.FunctionSummary) string { return f.Namespace + "/" + f.Function })
		tr.ValidArgsFunction = func(c *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
			switch len(args) {
			case 0:
				var out []string
				for _, v := range []string{"on", "off", "status", "reset"} {
					if strings.HasPrefix(v, prefix) {
						out = append(out, v)
					}
				}
				return out, cobra.ShellCompDirectiveNoFileComp
			case 1:
				return qualified(c, args, prefix)
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
	}
}

// completeNames lists name(f) for the functions with events in the last
// three days, from the source the command line (or environment) selects.
func (a *app) completeNames(name func(queries.FunctionSummary) string) cobra.CompletionFunc {
	return func(c *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		a.applyEnv(c)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		src, err := a.source(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer src.Close()
		now := a.now().UTC().Truncate(time.Minute)
		q := queries.StatsQuery{Window: queries.TimeRange{From: now.Add(-72 * time.Hour), To: now.Add(time.Minute)}}
		if err := q.Validate(); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		fns, err := src.Functions(ctx, q, false)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, f := range fns {
			if n := name(f); strings.HasPrefix(n, prefix) && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
