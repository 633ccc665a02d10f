// Command statustrace-plugin is the go-plugin process that a scheduler
// launches through plugin/host: it turns status transitions into
// OpenTelemetry spans and exports them over OTLP. It is not run by hand.
package main

import (
	"context"
	"os"
	"runtime/debug"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/statustrace/statustrace/plugin"
	"github.com/statustrace/statustrace/plugin/spans"
)

func main() {
	// JSON on stderr: go-plugin forwards it into the host's logger with levels.
	logger := hclog.New(&hclog.LoggerOptions{Name: "statustrace-plugin", Output: os.Stderr, JSONFormat: true})
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400) // the heap is small and bounded: spend memory, not CPU, on GC
	}
	sink := spans.NewSink(logger)
	plugin.Serve(sink, logger)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sink.Shutdown(ctx); err != nil {
		logger.Error("shutdown", "error", err)
		os.Exit(1)
	}
}
