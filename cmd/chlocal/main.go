// Command chlocal is the local ClickHouse endpoint: ClickHouse's HTTP
// interface and native TCP protocol in front of the embedded engine of
// deploy/local. Start it with `make clickhouse`, which installs the engine
// first.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/statustrace/statustrace/deploy/local/chlocal"
)

func main() {
	var cfg chlocal.Config
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:8123", "address to serve ClickHouse's HTTP interface on")
	flag.StringVar(&cfg.ListenTCP, "listen-tcp", "", "address to serve ClickHouse's native TCP protocol on (e.g. 127.0.0.1:9000; empty: none)")
	tokenFile := flag.String("token-file", "", "file holding the instance token answered on /statustrace/instance")
	flag.StringVar(&cfg.Node, "node", "deploy/local/node_modules/.bin/node", "Node 24 binary")
	flag.StringVar(&cfg.Script, "engine", "deploy/local/engine.mjs", "engine script")
	verbose := flag.Bool("v", false, "log every query")
	flag.Parse()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Stderr = os.Stderr
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			cfg.Log.Error("read instance token", "err", err)
			os.Exit(1)
		}
		cfg.Token = strings.TrimSpace(string(b))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := chlocal.Run(ctx, cfg); err != nil {
		cfg.Log.Error("chlocal stopped", "err", err)
		os.Exit(1)
	}
}
