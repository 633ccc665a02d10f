// Package scheduler is the reference async scheduler: it accepts
// invocations over HTTP, runs each as one River job that POSTs the payload to
// the function's endpoint, retries, expires and terminates events, and
// reports every state change through riverstatus to a Reporter (the
// statustrace plugin host, or nothing).
//
// River keeps the jobs in SQLite (embedded, one node) or PostgreSQL (several
// nodes sharing the work). Each node works its share of the invocations and
// has a control queue of its own through which any node asks it to
// terminate an event it is running.
package scheduler

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"golang.org/x/time/rate"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/statustrace/statustrace/internal/authtoken"
	"github.com/statustrace/statustrace/scheduler/api"
	"github.com/statustrace/statustrace/scheduler/config"
	"github.com/statustrace/statustrace/scheduler/internal/store"
	"github.com/statustrace/statustrace/scheduler/riverstatus"
)

// Options are what New needs besides the config file.
type Options struct {
	Config *config.Config
	// Reporter receives the transitions; nil runs without status trace.
	Reporter riverstatus.Reporter
	// MeterProvider gets the scheduler's metrics (rejections, accepted
	// invocations); nil: none.
	MeterProvider metric.MeterProvider
	Logger        *slog.Logger
	// HTTPClient calls the functions; nil: one sized for Config.Workers.
	HTTPClient *http.Client
	// Tokens, when set, are required on every API request but /healthz
	// (api.Authenticated); nil serves the API without authentication (an
	// embedding program's choice; cmd/scheduler requires tokens).
	Tokens *authtoken.Tokens
	// AdminTokens may also change an account's standing (tenant tokens
	// only read it); nil: standing comes from the config file alone.
	AdminTokens *authtoken.Tokens
}

// Scheduler is one scheduler node.
type Scheduler struct {
	cfg      *config.Config
	log      *slog.Logger
	db       *sql.DB
	closeDB  func()
	store    *store.Store
	client   riverClient
	clientID string
	tracker  *riverstatus.Tracker
	fns      map[string]*function
	calls    registry
	http     *http.Client
	metrics  metrics
	tokens   *authtoken.Tokens
	admin    *authtoken.Tokens
	standing atomic.Pointer[standings]
	backlog  metric.Registration

	// notices are the terminate notices in flight; Stop waits for them
	// (until its ctx ends, then cancels them with noticeCtx).
	notices      sync.WaitGroup
	noticeCtx    context.Context
	noticeCancel context.CancelFunc

	stopOnce     sync.Once
	stopSettings context.CancelFunc
	settingsDone chan struct{}
	expiryDone   chan struct{}
}

// function is a configured function with its run-time state.
type function struct {
	cfg     *config.Function
	limiter *rate.Limiter // nil: no QPS limit
	trace   atomic.Bool
	attrs   metric.MeasurementOption
}

// riverClient is the part of *river.Client[TTx] the scheduler uses, the
// same for both drivers.
type riverClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobCancel(ctx context.Context, id int64) (*rivertype.JobRow, error)
}

// New opens the database, runs River's and the scheduler's migrations and
// builds the node. Start it to work jobs; Invoke works before Start (the
// jobs wait).
func New(ctx context.Context, opts Options) (*Scheduler, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("scheduler: no config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	s := &Scheduler{
		cfg:      cfg,
		log:      log,
		clientID: clientID(cfg.Node),
		fns:      map[string]*function{},
		http:     opts.HTTPClient,
		tokens:   opts.Tokens,
		admin:    opts.AdminTokens,
		tracker:  riverstatus.New(riverstatus.Options{Reporter: opts.Reporter, Node: cfg.Node}),
	}
	s.noticeCtx, s.noticeCancel = context.WithCancel(context.Background())
	if s.http == nil {
		s.http = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConns:        cfg.Workers * 2,
			MaxIdleConnsPerHost: cfg.Workers,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	var err error
	if s.metrics, err = newMetrics(mp); err != nil {
		return nil, err
	}
	var rescueAfter time.Duration = time.Hour
	for i := range cfg.Functions {
		fc := &cfg.Functions[i]
		f := &function{cfg: fc, attrs: functionAttrs(fc)}
		if fc.QPS > 0 {
			f.limiter = rate.NewLimiter(rate.Limit(fc.QPS), fc.Burst)
		}
		f.trace.Store(fc.TraceOn())
		s.fns[fc.Key()] = f
		rescueAfter = max(rescueAfter, jobTimeout(fc)+time.Minute)
	}

	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &invokeWorker{s: s}); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &terminateWorker{s: s}); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	riverLog := slog.New(levelFilter{log.Handler(), slog.LevelWarn})
	rc := &river.Config{
		ID:     s.clientID,
		Logger: riverLog,
		Queues: map[string]river.QueueConfig{
			river.QueueDefault:       {MaxWorkers: cfg.Workers},
			controlQueue(s.clientID): {MaxWorkers: 10},
		},
		Middleware:                  []rivertype.Middleware{s.tracker},
		RetryPolicy:                 riverstatus.RetryPolicy{Policy: &river.DefaultClientRetryPolicy{}},
		FetchCooldown:               cfg.FetchCooldown.D(),
		FetchPollInterval:           cfg.FetchPoll.D(),
		CompletedJobRetentionPeriod: cfg.JobRetention.D(),
		CancelledJobRetentionPeriod: cfg.JobRetention.D(),
		DiscardedJobRetentionPeriod: cfg.JobRetention.D(),
		RescueStuckJobsAfter:        rescueAfter,
		Workers:                     workers,
	}

	if err := s.openDatabase(ctx, rc); err != nil {
		return nil, err
	}
	err = s.store.Migrate(ctx)
	if err == nil {
		err = s.refreshTracing(ctx)
	}
	if err == nil {
		err = s.refreshStanding(ctx)
	}
	if err == nil {
		s.backlog, err = s.registerBacklog(mp)
	}
	if err != nil {
		s.closeDB()
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	return s, nil
}

// openDatabase connects to the configured database and sets up River on it.
func (s *Scheduler) openDatabase(ctx context.Context, rc *river.Config) error {
	switch s.cfg.Database.Driver {
	case config.DriverSQLite:
		db, err := sql.Open("sqlite", sqliteDSN(s.cfg.Database.DSN))
		if err != nil {
			return fmt.Errorf("scheduler: open sqlite: %w", err)
		}
		// SQLite runs one statement at a time; one connection avoids
		// SQLITE_BUSY between River's concurrent services.
		db.SetMaxOpenConns(1)
		s.db, s.closeDB = db, func() { db.Close() }
		if s.client, err = setupRiver(ctx, riversqlite.New(db), rc); err != nil {
			db.Close()
			return err
		}
		s.store, err = store.New(db, store.SQLite)
		return err
	case config.DriverPostgres:
		pool, err := pgxpool.New(ctx, s.cfg.Database.DSN)
		if err != nil {
			return fmt.Errorf("scheduler: connect postgres: %w", err)
		}
		db := stdlib.OpenDBFromPool(pool)
		s.db, s.closeDB = db, func() { db.Close(); pool.Close() }
		if s.client, err = setupRiver(ctx, riverpgxv5.New(pool), rc); err != nil {
			s.closeDB()
			return err
		}
		s.store, err = store.New(db, store.Postgres)
		return err
	}
	return fmt.Errorf("scheduler: unknown database driver %q", s.cfg.Database.Driver)
}

// setupRiver runs River's migrations and builds the client.
func setupRiver[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], rc *river.Config) (riverClient, error) {
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: rc.Logger})
	if err != nil {
		return nil, fmt.Errorf("scheduler: river migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("scheduler: river migrations: %w", err)
	}
	c, err := river.NewClient(driver, rc)
	if err != nil {
		return nil, fmt.Errorf("scheduler: river client: %w", err)
	}
	return c, nil
}

// Start begins working jobs and following the shared tracing switches.
func (s *Scheduler) Start(ctx context.Context) error {
	// River stops when its start context ends; the node's life is Stop's.
	if err := s.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("scheduler: start river: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopSettings = cancel
	s.settingsDone = make(chan struct{})
	go s.followTracing(sctx)
	s.expiryDone = make(chan struct{})
	go s.followExpiry(sctx)
	return nil
}

// Stop stops taking jobs and waits for running ones until ctx ends, then
// cancels them (River puts them back for another node or the next start)
// and closes the database.
func (s *Scheduler) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		if s.stopSettings != nil {
			s.stopSettings()
			<-s.settingsDone
			<-s.expiryDone
			if err = s.client.Stop(ctx); errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				hard, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err = s.client.StopAndCancel(hard)
				cancel()
			}
		}
		if s.backlog != nil {
			_ = s.backlog.Unregister()
		}
		s.awaitNotices(ctx)
		s.closeDB()
	})
	if err != nil {
		return fmt.Errorf("scheduler: stop: %w", err)
	}
	return nil
}

// awaitNotices waits for the terminate notices in flight until ctx ends,
// then cancels the rest and waits for them to return.
func (s *Scheduler) awaitNotices(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		s.notices.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.noticeCancel()
		<-done
	}
	s.noticeCancel()
}

// Handler is the node's HTTP API.
func (s *Scheduler) Handler() http.Handler {
	h := api.Handler(s, s.cfg.MaxPayloadBytes)
	if s.tokens != nil {
		return api.Authenticated(s, h, s.tokens, s.admin, s.cfg.Tenant)
	}
	return h
}

// ClientID is the node's River client ID (its node name and a random
// suffix), as it appears in a job's attempted_by.
func (s *Scheduler) ClientID() string { return s.clientID }

// clientID makes a River client ID from the node name: River wants it
// unique among running clients, and the control queue name derived from it
// must be lower-case letters, digits and single dashes.
func clientID(node string) string {
	var b strings.Builder
	dash := true
	for _, r := range strings.ToLower(node) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		name = "node"
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return name + "-" + hex.EncodeToString(suffix)
}

// controlQueue is the queue only the client with this ID works.
func controlQueue(clientID string) string { return "ctl-" + clientID }

// sqliteDSN turns a path or file: URI into one with the settings River
// needs under concurrency, unless the DSN sets them itself.
func sqliteDSN(dsn string) string {
	if !strings.HasPrefix(dsn, "file:") {
		dsn = "file:" + dsn
	}
	for _, p := range []struct{ key, param string }{
		{"journal_mode", "_pragma=journal_mode(WAL)"},
		{"busy_timeout", "_pragma=busy_timeout(10000)"},
		{"synchronous", "_pragma=synchronous(NORMAL)"},
		{"_txlock", "_txlock=immediate"},
	} {
		if strings.Contains(dsn, p.key) {
			continue
		}
		if strings.Contains(dsn, "?") {
			dsn += "&" + p.param
		} else {
			dsn += "?" + p.param
		}
	}
	return dsn
}

// levelFilter drops records below a level (River logs every retry at info).
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (h levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{h.Handler.WithAttrs(a), h.min}
}

func (h levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{h.Handler.WithGroup(n), h.min}
}
