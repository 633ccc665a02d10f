package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/internal/console"
	"github.com/statustrace/statustrace/internal/schedclient"
	"github.com/statustrace/statustrace/queries"
)

func (a *app) serveCmd() *cobra.Command {
	var (
		listen, tokenFile, logLevel string
		tokenSpecs                  []string
		installViews                bool
		queryTimeout, shutdown      time.Duration
		schedURL, schedToken        string
		schedTenant, traceURL       string
		liveInterval                time.Duration
		noConsole                   bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP JSON API and the web console (tokens map to tenants)",
		Long: `Serve the HTTP JSON API on ClickHouse (--dsn or CLICKHOUSE_DSN).

Every request needs "Authorization: Bearer <token>"; each token maps to one
tenant and optionally some of its namespaces. Tokens come from --token-spec
(token=tenant or token=tenant:ns1,ns2, repeatable), --token-file (JSON, see
internal/api/README.md) and STATUSTRACE_API_TOKENS (specs separated by ';').

The web console is served under /ui/ on the same address: sign in with one
of the tokens. With --scheduler-url (and its token) the console and the API
can terminate events and switch status trace per function.`,
		Example: `  STATUSTRACE_API_TOKENS='s3cr3t-token-for-acme=acme' statustrace serve --dsn http://127.0.0.1:8123/statustrace
  statustrace serve --listen :8080 --token-file /etc/statustrace/tokens.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level: %v", err)
			}
			log := slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level}))
			toks := api.NewTokens()
			for _, s := range tokenSpecs {
				if err := toks.ParseTokenSpecs(s); err != nil {
					return usagef("--token: %v", err)
				}
			}
			if env := a.getenv("STATUSTRACE_API_TOKENS"); env != "" {
				if err := toks.ParseTokenSpecs(env); err != nil {
					return usagef("STATUSTRACE_API_TOKENS: %v", err)
				}
			}
			if tokenFile != "" {
				if err := toks.LoadFile(tokenFile); err != nil {
					return usagef("%v", err)
				}
			}
			if toks.Len() == 0 {
				return usagef("no API tokens: set --token, --token-file or STATUSTRACE_API_TOKENS")
			}
			ctx := cmd.Context()
			conn, db, err := a.openDB(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			if installViews {
				ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				err := queries.Install(ictx, conn, queries.InstallOptions{Database: db})
				cancel()
				if err != nil {
					return fmt.Errorf("%w (run `statustrace migrate` first, or --install-views=false)", err)
				}
			}
			store, err := queries.New(ctx, conn)
			if err != nil {
				return err
			}
			traceTmpl, err := console.ParseTraceURL(traceURL)
			if err != nil {
				return usagef("--trace-url: %v", err)
			}
			cfg := api.Config{Backend: store, Tokens: toks, Log: log, QueryTimeout: queryTimeout, LiveInterval: liveInterval}
			if schedURL == "" {
				schedURL = a.getenv("STATUSTRACE_SCHEDULER_URL")
			}
			if schedURL != "" {
				if schedToken == "" {
					schedToken = a.getenv("STATUSTRACE_SCHEDULER_TOKEN")
				}
				if schedTenant == "" {
					return usagef("--scheduler-tenant: required with --scheduler-url (the tenant whose functions the scheduler runs)")
				}
				sc, err := schedclient.New(schedURL, schedToken)
				if err != nil {
					return usagef("--scheduler-url: %v", err)
				}
				cfg.Scheduler, cfg.SchedulerTenant = sc, schedTenant
			}
			srv, err := api.New(cfg)
			if err != nil {
				return err
			}
			defer srv.Close()
			handler := srv.Handler()
			if !noConsole {
				con, err := console.New(console.Config{API: srv, TraceURL: traceTmpl, Actions: cfg.Scheduler != nil, Log: log})
				if err != nil {
					return err
				}
				mux := http.NewServeMux()
				mux.Handle("/v1/", srv.Handler())
				mux.Handle("/healthz", srv.Handler())
				mux.Handle("/", con.Handler())
				handler = mux
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
			log.Info("statustrace API listening", "addr", "http://"+ln.Addr().String(), "console", !noConsole, "database", db, "tokens", toks.Len(), "scheduler", schedURL)
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("serve: %w", err)
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), shutdown)
			defer cancel()
			log.Info("statustrace API stopping")
			srv.Close() // live streams end, so Shutdown need not wait for them
			if err := hs.Shutdown(sctx); err != nil {
				_ = hs.Close()
				return fmt.Errorf("shutdown: %w", err)
			}
			if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	fl.StringArrayVar(&tokenSpecs, "token-spec", nil, "API token: token=tenant or token=tenant:ns1,ns2 (repeatable; prefer the file or env: flags show in ps)")
	fl.StringVar(&tokenFile, "token-file", "", "JSON file of API tokens")
	fl.BoolVar(&installViews, "install-views", true, "create or update the parameterized views on start")
	fl.DurationVar(&queryTimeout, "query-timeout", 30*time.Second, "limit for one list, lookup or statistics query")
	fl.DurationVar(&shutdown, "shutdown-timeout", 10*time.Second, "how long running requests may finish on SIGTERM")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&schedURL, "scheduler-url", "", "the scheduler's API, for actions (terminate, status trace on/off); env STATUSTRACE_SCHEDULER_URL")
	fl.StringVar(&schedToken, "scheduler-token", "", "bearer token for the scheduler's API (prefer env STATUSTRACE_SCHEDULER_TOKEN: flags show in ps)")
	fl.StringVar(&schedTenant, "scheduler-tenant", "", "the tenant whose functions the scheduler runs (only its tokens may act)")
	fl.StringVar(&traceURL, "trace-url", "", "link of a trace in the console, a template with {{.TraceID}}, e.g. 'http://grafana:3000/explore?...{{.TraceID}}...'")
	fl.DurationVar(&liveInterval, "live-interval", 500*time.Millisecond, "how often a live stream polls ClickHouse")
	fl.BoolVar(&noConsole, "no-console", false, "serve the API only, without the web console under /ui/")
	return cmd
}
