package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/spf13/cobra"

	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/queries"
)

// app holds what the commands share; tests replace its clock and streams.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	getenv         func(string) string

	// Global flags.
	server, token string
	dsn, database string
	tenant        string
	output        string
	timeout       time.Duration
}

// usageError is a mistake on the command line (exit code 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// isUsage: exit code 2 for a usage error, whether this command or the
// server (HTTP 400) found it.
func isUsage(err error) bool {
	var u usageError
	var ae *api.APIError
	return errors.As(err, &u) || queries.IsParamError(err) || (errors.As(err, &ae) && ae.BadRequest())
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "statustrace",
		Short:         "Status trace of async events: API server, queries, statistics, export",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", "", "statustrace API to query (env STATUSTRACE_SERVER), e.g. http://127.0.0.1:8080")
	pf.StringVar(&a.token, "token", "", "API token for --server (env STATUSTRACE_TOKEN)")
	pf.StringVar(&a.dsn, "dsn", "", "ClickHouse DSN to query directly instead of an API (env CLICKHOUSE_DSN), e.g. http://127.0.0.1:8123/statustrace")
	pf.StringVar(&a.database, "database", "", "statustrace database when the DSN names none (default "+schema.DefaultDatabase+")")
	pf.StringVar(&a.tenant, "tenant", "", "tenant to query with --dsn (env STATUSTRACE_TENANT)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table (for people) or json (for scripts)")
	pf.DurationVar(&a.timeout, "timeout", time.Minute, "how long a query may take")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		for flag, env := range map[string]string{"server": "STATUSTRACE_SERVER", "token": "STATUSTRACE_TOKEN", "dsn": "CLICKHOUSE_DSN", "tenant": "STATUSTRACE_TENANT"} {
			if f := cmd.Flags().Lookup(flag); f != nil && !f.Changed {
				if v := a.getenv(env); v != "" {
					_ = f.Value.Set(v)
				}
			}
		}
		if a.output != "table" && a.output != "json" {
			return usagef("--output %q: want table or json", a.output)
		}
		return nil
	}
	root.AddCommand(a.serveCmd(), a.migrateCmd(), a.eventsCmd(), a.statsCmd(), a.exportCmd())
	return root
}

// source is where the query commands get their answers: the API or
// ClickHouse directly.
type source interface {
	List(ctx context.Context, f queries.ListFilter) (*queries.Page, error)
	Get(ctx context.Context, requestID string) (*queries.EventDetail, error)
	Stats(ctx context.Context, q queries.StatsQuery, durations bool) (*queries.Stats, error)
	Export(ctx context.Context, r api.ExportRequest, w io.Writer, total func(uint64), line func()) error
	Close() error
}

type apiSource struct{ *api.Client }

func (apiSource) Close() error { return nil }

type dbSource struct {
	conn  driver.Conn
	store *queries.Store
	scope queries.Scope
}

func (d *dbSource) List(ctx context.Context, f queries.ListFilter) (*queries.Page, error) {
	return d.store.List(ctx, d.scope, f)
}

func (d *dbSource) Get(ctx context.Context, id string) (*queries.EventDetail, error) {
	return d.store.Get(ctx, d.scope, id)
}

func (d *dbSource) Stats(ctx context.Context, q queries.StatsQuery, durations bool) (*queries.Stats, error) {
	st, err := d.store.Stats(ctx, d.scope, q)
	if err != nil {
		return nil, err
	}
	if st.Backlog, err = d.store.Backlog(ctx, d.scope, queries.BacklogQuery{Namespace: q.Namespace, Function: q.Function, Qualifier: q.Qualifier}); err != nil {
		return nil, err
	}
	if !durations {
		return st, nil
	}
	if st.Durations, err = d.store.Durations(ctx, d.scope, q); err != nil {
		return nil, err
	}
	return st, nil
}

func (d *dbSource) Export(ctx context.Context, r api.ExportRequest, w io.Writer, total func(uint64), line func()) error {
	return api.ExportTo(ctx, d.store, d.scope, r, w, func(n uint64) error {
		if total != nil {
			total(n)
		}
		return nil
	}, line)
}

func (d *dbSource) Close() error { return d.conn.Close() }

// openDB opens the DSN with the statustrace database as the default one: the
// DSN's database if it names one, else --database.
func (a *app) openDB(ctx context.Context) (driver.Conn, string, error) {
	return a.open(ctx, true)
}

// open opens the DSN; with useTarget the connection's default database is
// the statustrace database, else the DSN's own (for creating it).
func (a *app) open(_ context.Context, useTarget bool) (driver.Conn, string, error) {
	if a.dsn == "" {
		return nil, "", usagef("no ClickHouse: set --dsn or CLICKHOUSE_DSN")
	}
	opts, err := clickhouse.ParseDSN(a.dsn)
	if err != nil {
		return nil, "", usagef("--dsn: %v", err)
	}
	db := opts.Auth.Database
	if a.database != "" {
		if db != "" && db != "default" && db != a.database {
			return nil, "", usagef("the DSN selects database %q but --database is %q", db, a.database)
		}
		db = a.database
	}
	if db == "" || db == "default" {
		db = schema.DefaultDatabase
	}
	if useTarget {
		opts.Auth.Database = db
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 10 * time.Second
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, "", fmt.Errorf("open ClickHouse: %w", err)
	}
	return conn, db, nil
}

// source picks the API when --server is set, else ClickHouse with --tenant.
func (a *app) source(ctx context.Context) (source, error) {
	if a.server != "" {
		if a.token == "" {
			return nil, usagef("--server needs --token (or STATUSTRACE_TOKEN)")
		}
		return apiSource{&api.Client{BaseURL: strings.TrimRight(a.server, "/"), Token: a.token}}, nil
	}
	if a.dsn == "" {
		return nil, usagef("nothing to query: set --server and --token (STATUSTRACE_SERVER, STATUSTRACE_TOKEN), or --dsn and --tenant (CLICKHOUSE_DSN, STATUSTRACE_TENANT)")
	}
	if a.tenant == "" {
		return nil, usagef("--dsn needs --tenant (or STATUSTRACE_TENANT): every query is limited to one tenant")
	}
	conn, _, err := a.openDB(ctx)
	if err != nil {
		return nil, err
	}
	st, err := queries.New(ctx, conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &dbSource{conn: conn, store: st, scope: queries.Scope{Tenant: a.tenant}}, nil
}

// withSource opens the source and runs fn with it, within --timeout.
func (a *app) withSource(ctx context.Context, fn func(context.Context, source) error) error {
	src, err := a.source(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	if a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	return fn(ctx, src)
}

// parseWhen reads a time flag: RFC 3339, Unix milliseconds, or a duration
// meaning that long ago ("90m", "2h").
func (a *app) parseWhen(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			d = -d
		}
		return a.now().Add(-d).UTC(), nil
	}
	t, err := api.ParseTime(flag, v)
	if err != nil {
		return t, usagef("--%s %q: want RFC 3339, Unix milliseconds or a duration ago (90m)", flag, v)
	}
	return t, nil
}
