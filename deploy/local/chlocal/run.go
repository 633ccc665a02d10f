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
	Listen    string // HTTP interface, host:port, default 127.0.0.1:8123
	ListenTCP string // native TCP protocol, host:port; empty: not served
	Node      string // the Node 24 binary
	Script    string // engine.mjs or engine-native.mjs
	// Token identifies this endpoint to the start script (GET
	// /statustrace/instance): an endpoint is reused only by the checkout
	// whose state folder holds the same token.
	Token  string
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
	// Both addresses are taken before the engine starts, so a busy port fails
	// at once and names itself.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen (HTTP) %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	var tcpLn net.Listener
	if cfg.ListenTCP != "" {
		if tcpLn, err = net.Listen("tcp", cfg.ListenTCP); err != nil {
			return fmt.Errorf("listen (native TCP) %s: %w", cfg.ListenTCP, err)
		}
		defer tcpLn.Close()
	}

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

	srv := NewServer(engine, cfg.Log)
	srv.token = cfg.Token
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	attrs := []any{"http", "http://" + ln.Addr().String(), "version", engine.Info().Version}
	var tcp *TCPServer
	if tcpLn != nil {
		tcp = NewTCPServer(srv)
		go func() { errc <- tcp.Serve(tcpLn) }()
		attrs = append(attrs, "native", "clickhouse://"+tcpLn.Addr().String())
	}
	cfg.Log.Info("local ClickHouse endpoint ready", attrs...)

	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if tcp != nil {
				tcp.Close()
			}
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return hs.Shutdown(shut)
		case <-engine.Done():
			_ = hs.Close()
			if tcp != nil {
				tcp.Close()
			}
			return errors.New("local ClickHouse engine exited")
		case err := <-errc:
			return err
		case now := <-tick.C:
			srv.ExpireSessions(now)
		}
	}
}
