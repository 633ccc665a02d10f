// Package store holds the scheduler's own SQL next to River's tables: the
// per-function status-trace switches shared by every node, and the lookup of
// a job by its event's request ID. It speaks SQLite and PostgreSQL through
// database/sql; every value is a bind parameter.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// ErrNotFound: no job carries that request ID.
var ErrNotFound = errors.New("not found")

// Store runs the scheduler's queries.
type Store struct {
	db      *sql.DB
	dialect string
}

// New returns a Store for db in the given dialect.
func New(db *sql.DB, dialect string) (*Store, error) {
	if dialect != SQLite && dialect != Postgres {
		return nil, fmt.Errorf("store: unknown dialect %q", dialect)
	}
	return &Store{db: db, dialect: dialect}, nil
}

// q rewrites '?' placeholders for PostgreSQL. The queries here are
// constants with no '?' inside literals.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// migrations are applied in order, each once, recorded by version.
var migrations = []struct {
	version int
	sql     string
}{
	{1, `CREATE TABLE statustrace_scheduler_tracing (
		namespace  text NOT NULL,
		function   text NOT NULL,
		enabled    boolean NOT NULL,
		updated_at timestamp NOT NULL,
		PRIMARY KEY (namespace, function)
	)`},
	{2, mustSQL("standing_create.sql")},
}

// requestIDExpr is how each dialect reads the request ID from River's job
// metadata (riverstatus.MetadataKey); the index and the lookup must use the
// very same expression for the index to serve the lookup.
var requestIDExpr = map[string]string{
	SQLite:   `json_extract(metadata, '$.statustrace.request_id')`,
	Postgres: `(metadata -> 'statustrace' ->> 'request_id')`,
}

// migrationLockKey is the PostgreSQL advisory lock held while migrating
// ("stsched" in ASCII).
const migrationLockKey int64 = 0x7374736368656400

// Migrate applies the scheduler's migrations and makes sure River's job
// table has the request-ID index. Run it after River's own migrations. It
// is safe to run from several nodes at once.
func (s *Store) Migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin migration: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op

	if s.dialect == Postgres {
		// Nodes starting together take turns (SQLite transactions already
		// do); even CREATE TABLE IF NOT EXISTS races without this.
		if _, err := tx.ExecContext(ctx, s.q(`SELECT pg_advisory_xact_lock(?)`), migrationLockKey); err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS statustrace_scheduler_migration (
		version    integer PRIMARY KEY,
		applied_at timestamp NOT NULL
	)`); err != nil {
		return fmt.Errorf("store: create migration table: %w", err)
	}
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM statustrace_scheduler_migration`)
	if err != nil {
		return fmt.Errorf("store: read migrations: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("store: read migrations: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read migrations: %w", err)
	}
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("store: migration %d: %w", m.version, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO statustrace_scheduler_migration (version, applied_at) VALUES (?, ?)`), m.version, time.Now().UTC()); err != nil {
			return fmt.Errorf("store: record migration %d: %w", m.version, err)
		}
	}
	// Not a versioned migration: River's own migrations may rebuild its job
	// table, so the index is checked on every start.
	if _, err := tx.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS statustrace_river_job_request_id ON river_job (`+requestIDExpr[s.dialect]+`)`); err != nil {
		return fmt.Errorf("store: request-id index on river_job: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.dialectSQL("expiry_index")); err != nil {
		return fmt.Errorf("store: expiry index on river_job: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit migrations: %w", err)
	}
	return nil
}

// JobID returns the ID of the newest job whose event has the request ID.
func (s *Store) JobID(ctx context.Context, requestID string) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id FROM river_job WHERE `+requestIDExpr[s.dialect]+` = ? ORDER BY id DESC LIMIT 1`), requestID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("store: look up request ID: %w", err)
	}
	return id, nil
}

// FunctionKey names a function.
type FunctionKey struct{ Namespace, Function string }

// SetTracing records a status-trace switch for a function; it overrides the
// config file on every node until ResetTracing.
func (s *Store) SetTracing(ctx context.Context, k FunctionKey, on bool) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO statustrace_scheduler_tracing (namespace, function, enabled, updated_at)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (namespace, function) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at`),
		k.Namespace, k.Function, on, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("store: set tracing of %s/%s: %w", k.Namespace, k.Function, err)
	}
	return nil
}

// ResetTracing removes a function's switch: the config file decides again.
func (s *Store) ResetTracing(ctx context.Context, k FunctionKey) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM statustrace_scheduler_tracing WHERE namespace = ? AND function = ?`), k.Namespace, k.Function); err != nil {
		return fmt.Errorf("store: reset tracing of %s/%s: %w", k.Namespace, k.Function, err)
	}
	return nil
}

// Tracing returns every recorded switch.
func (s *Store) Tracing(ctx context.Context) (map[FunctionKey]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT namespace, function, enabled FROM statustrace_scheduler_tracing`)
	if err != nil {
		return nil, fmt.Errorf("store: read tracing switches: %w", err)
	}
	defer rows.Close()
	out := map[FunctionKey]bool{}
	for rows.Next() {
		var k FunctionKey
		var on bool
		if err := rows.Scan(&k.Namespace, &k.Function, &on); err != nil {
			return nil, fmt.Errorf("store: read tracing switches: %w", err)
		}
		out[k] = on
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read tracing switches: %w", err)
	}
	return out, nil
}
