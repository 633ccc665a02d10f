// Command statustrace serves and queries the status trace of async events:
//
//	statustrace serve               the HTTP JSON API and web console (tokens map to tenants)
//	statustrace events list|get     list events, look one up with its timeline (-w: follow it)
//	statustrace events watch        print status changes live
//	statustrace events terminate    stop a running event (through serve)
//	statustrace functions list      per-function statistics
//	statustrace functions trace     status trace on/off/status/reset per function (through serve)
//	statustrace trace               an event's trace link or spans
//	statustrace stats               counts per status, series, failure rate, durations
//	statustrace export              an NDJSON export of a window (to keep beyond retention)
//	statustrace migrate             create/upgrade the schema and install the views
//
// The query commands talk to a running API (--server and --token) or
// directly to ClickHouse (--dsn and --tenant). See README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit code: 0 on success, 1
// on failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return execute(ctx, &app{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now, getenv: os.Getenv}, args)
}

// execute runs one command line with a's streams, clock and environment.
func execute(ctx context.Context, a *app, args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		msg, hint := a.explain(err)
		fmt.Fprintln(a.stderr, "statustrace:", msg)
		if hint != "" {
			fmt.Fprintln(a.stderr, "hint:", hint)
		}
		if isUsage(err) {
			return 2
		}
		return 1
	}
	return 0
}
