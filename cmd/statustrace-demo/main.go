// Command statustrace-demo runs the whole statustrace pipeline on this
// machine — ClickHouse (CLICKHOUSE_DSN, or the local endpoint of
// deploy/local), the collector, the scheduler with the plugin, the API —
// fires a few thousand invocations with a realistic mix of outcomes, and
// prints the status statistics and a few lookups. `make demo` builds the
// binaries and runs it.
//
//	statustrace-demo [-bin bin] [-n 3000] [-exit]
//
// Ctrl-C stops everything it started. Without a terminal on stdin (CI), or
// with -exit, it stops after printing instead of waiting for Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/term"

	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/internal/stack/demo"
)

func main() {
	binDir := flag.String("bin", "bin", "directory of the built binaries (make build)")
	n := flag.Int("n", 3000, "invocations to fire (plus bursts at the rate-limited function)")
	exit := flag.Bool("exit", false, "stop after printing instead of waiting for Ctrl-C (the default when stdin is not a terminal)")
	database := flag.String("database", "statustrace_demo", "ClickHouse database (dropped and recreated)")
	work := flag.String("work", "", "work directory for logs and configs (default .cache/demo under the module root)")
	shots := flag.String("screenshots", "", "write a PNG of each console page into this directory (needs chromium)")
	flag.Parse()

	root, err := stack.ModuleRoot()
	if err != nil {
		fail(err)
	}
	if *work == "" {
		*work = filepath.Join(root, ".cache", "demo")
	}
	if !filepath.IsAbs(*binDir) {
		*binDir = filepath.Join(root, *binDir)
	}
	if *n < 100 {
		fail(errors.New("-n: at least 100"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	err = demo.Run(ctx, demo.Options{
		Root: root, BinDir: *binDir, WorkDir: *work, Database: *database,
		Invocations: *n, Wait: !*exit && isTerminal(os.Stdin), Out: os.Stdout, Screenshots: *shots,
	})
	if ctx.Err() != nil {
		fmt.Println("interrupted.")
		return
	}
	if err != nil {
		fail(err)
	}
}

// isTerminal: a real terminal, not /dev/null (which is a character
// device too).
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func fail(err error) {
	fmt.Fprintf(os.Stderr, "statustrace-demo: %v\n", err)
	os.Exit(1)
}
