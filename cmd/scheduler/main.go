// Command scheduler runs one node of the reference async scheduler: its HTTP
// API (and /metrics), the River workers, the statustrace plugin when one is
// configured, and the demo functions when demo_listen is set.
//
//	scheduler -config scheduler.yaml
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/statustrace/statustrace/internal/authtoken"
	"github.com/statustrace/statustrace/plugin/host"
	"github.com/statustrace/statustrace/scheduler"
	"github.com/statustrace/statustrace/scheduler/config"
	"github.com/statustrace/statustrace/scheduler/demofuncs"
	"github.com/statustrace/statustrace/scheduler/riverstatus"
)

func main() {
	configPath := flag.String("config", "scheduler.yaml", "path of the scheduler config file (YAML or JSON)")
	logLevel := flag.String("log-level", "info", "debug, info, warn or error")
	shutdown := flag.Duration("shutdown-timeout", 30*time.Second, "how long running calls may finish on SIGTERM before they are cancelled and put back")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "scheduler: -log-level: %v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(*configPath, log, level, *shutdown); err != nil {
		log.Error("scheduler stopped", "err", err)
		os.Exit(1)
	}
}

func run(configPath string, log *slog.Logger, level slog.Level, shutdown time.Duration) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return fmt.Errorf("metrics exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	defer mp.Shutdown(context.Background()) //nolint:errcheck // best effort at exit

	var rep riverstatus.Reporter
	var hostRep *host.Reporter
	if cfg.StatusTrace.PluginPath != "" {
		hostRep, err = host.Start(ctx, host.Config{
			PluginPath:    cfg.StatusTrace.PluginPath,
			PluginConfig:  cfg.StatusTrace.PluginConfigWithSpool(),
			BufferSize:    cfg.StatusTrace.BufferSize,
			BatchSize:     cfg.StatusTrace.BatchSize,
			FlushInterval: cfg.StatusTrace.FlushInterval.D(),
			Logger:        hclog.New(&hclog.LoggerOptions{Name: "statustrace", Level: hclog.LevelFromString(level.String()), JSONFormat: true}),
			MeterProvider: mp,
		})
		if err != nil {
			return fmt.Errorf("status trace plugin: %w", err)
		}
		rep = hostRep
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := hostRep.Close(cctx); err != nil {
				log.Warn("closing the status trace plugin", "err", err)
			}
		}()
	} else {
		log.Warn("no status_trace.plugin_path: running without status trace")
	}

	tokens, err := apiTokens(cfg, os.Getenv("SCHEDULER_API_TOKENS"))
	if err != nil {
		return err
	}
	admin, err := adminTokens(cfg, os.Getenv("SCHEDULER_ADMIN_TOKENS"))
	if err != nil {
		return err
	}
	s, err := scheduler.New(ctx, scheduler.Options{Config: cfg, Reporter: rep, MeterProvider: mp, Logger: log, Tokens: tokens, AdminTokens: admin})
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", s.Handler())
	servers := []*http.Server{{Addr: cfg.Listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	if cfg.DemoListen != "" {
		servers = append(servers, &http.Server{Addr: cfg.DemoListen, Handler: demofuncs.New(), ReadHeaderTimeout: 10 * time.Second})
	}
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", srv.Addr, err)
			}
		}()
	}
	log.Info("scheduler started", "node", cfg.Node, "listen", cfg.Listen, "demo_listen", cfg.DemoListen,
		"database", cfg.Database.Driver, "functions", len(cfg.Functions), "client_id", s.ClientID())

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdown)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(sctx)
	}
	if err := s.Stop(sctx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// adminTokens reads the tokens that may also change an account's standing
// (admin_tokens, SCHEDULER_ADMIN_TOKENS); none is fine.
func adminTokens(cfg *config.Config, env string) (*authtoken.Tokens, error) {
	toks := authtoken.NewTokens()
	for _, spec := range append(append([]string{}, cfg.AdminTokens...), env) {
		if err := toks.ParseTokenSpecs(spec); err != nil {
			return nil, fmt.Errorf("admin tokens: %w", err)
		}
	}
	if toks.Len() == 0 {
		return nil, nil
	}
	return toks, nil
}

// apiTokens reads the API's bearer tokens from the config (api_tokens,
// api_token_file) and SCHEDULER_API_TOKENS; at least one is required, for
// the tenant the scheduler runs.
func apiTokens(cfg *config.Config, env string) (*authtoken.Tokens, error) {
	toks := authtoken.NewTokens()
	for _, spec := range append(append([]string{}, cfg.APITokens...), env) {
		if err := toks.ParseTokenSpecs(spec); err != nil {
			return nil, fmt.Errorf("API tokens: %w", err)
		}
	}
	if cfg.APITokenFile != "" {
		if err := toks.LoadFile(cfg.APITokenFile); err != nil {
			return nil, fmt.Errorf("API tokens: %w", err)
		}
	}
	if toks.Len() == 0 {
		return nil, fmt.Errorf("no API tokens: set api_tokens or api_token_file in the config, or SCHEDULER_API_TOKENS (token=%s, at least %d characters)", cfg.Tenant, authtoken.MinTokenLen)
	}
	return toks, nil
}
