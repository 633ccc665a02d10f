package chlocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Config says where the engine is and where to listen.
type Config struct {
	Listen string // host:port, default 127.0.0.1:8123
	Node   string // the Node 24 binary
	Script string // engine.mjs
	Log    *slog.Logger
	Stderr io.Writer // the engine's own log
	// EngineTimeout bounds one engine call; a hung engine is killed and the
	// endpoint exits (default 5 minutes).
	EngineTimeout time.Duration
}

// Run starts the engine and serves until ctx ends or the engine dies.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8123"
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	defer ln.Close()

	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	engine, err := StartEngine(startCtx, cfg.Node, cfg.Script, cfg.Stderr)
	cancel()
	if err != nil {
		return err
	}
	defer engine.Close()
	engine.Timeout = cfg.EngineTimeout
	if engine.Timeout == 0 {
		engine.Timeout = 5 * time.Minute
	}
	cfg.Log.Info("local ClickHouse endpoint ready", "addr", "http://"+ln.Addr().String(), "version", engine.Info().Version)

	srv := NewServer(engine, cfg.Log)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()

	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return hs.Shutdown(shut)
		case <-engine.Done():
			_ = hs.Close()
			return errors.New("local ClickHouse engine exited")
		case err := <-errc:
			return err
		case now := <-tick.C:
			srv.ExpireSessions(now)
		}
	}
}
