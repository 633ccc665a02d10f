package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/statustrace/statustrace/scheduler/internal/store"
	"github.com/statustrace/statustrace/testkit/pgtest"
)

func sqliteDB(t *testing.T) *sql.DB {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "s.db")+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	m, err := rivermigrate.New(riversqlite.New(db), nil)
	require.NoError(t, err)
	_, err = m.Migrate(context.Background(), rivermigrate.DirectionUp, nil)
	require.NoError(t, err)
	return db
}

func postgresDB(t *testing.T) *sql.DB {
	pool, err := pgxpool.New(context.Background(), pgtest.DSN(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	require.NoError(t, err)
	_, err = m.Migrate(context.Background(), rivermigrate.DirectionUp, nil)
	require.NoError(t, err)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	for _, tc := range []struct {
		dialect string
		open    func(*testing.T) *sql.DB
	}{{store.SQLite, sqliteDB}, {store.Postgres, postgresDB}} {
		t.Run(tc.dialect, func(t *testing.T) {
			ctx := context.Background()
			db := tc.open(t)
			s, err := store.New(db, tc.dialect)
			require.NoError(t, err)

			// Several nodes migrating at once, then again: each migration once.
			var wg sync.WaitGroup
			errs := make(chan error, 3)
			for range 3 {
				wg.Add(1)
				go func() { defer wg.Done(); errs <- s.Migrate(ctx) }()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.NoError(t, s.Migrate(ctx))
			var n int
			require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM statustrace_scheduler_migration`).Scan(&n))
			assert.Equal(t, 2, n, "one row per migration")

			// Request-ID lookup over River's job table.
			meta := `{"statustrace":{"request_id":"rid-1"}}`
			other := `{"x":1}`
			for _, md := range []string{meta, other} {
				q := `INSERT INTO river_job (kind, max_attempts, metadata, args) VALUES ('k', 1, ` + castJSON(tc.dialect, 1) + `, ` + castJSON(tc.dialect, 2) + `)`
				_, err = db.ExecContext(ctx, q, md, "{}")
				require.NoError(t, err)
			}
			id, err := s.JobID(ctx, "rid-1")
			require.NoError(t, err)
			assert.Positive(t, id)
			_, err = s.JobID(ctx, "nope")
			assert.ErrorIs(t, err, store.ErrNotFound)
			_, err = s.JobID(ctx, "' OR 1=1 --")
			assert.ErrorIs(t, err, store.ErrNotFound, "the request ID is a bound value")

			// Tracing switches.
			k := store.FunctionKey{Namespace: "ns", Function: "fn"}
			require.NoError(t, s.SetTracing(ctx, k, false))
			got, err := s.Tracing(ctx)
			require.NoError(t, err)
			assert.Equal(t, map[store.FunctionKey]bool{k: false}, got)
			require.NoError(t, s.SetTracing(ctx, k, true))
			got, err = s.Tracing(ctx)
			require.NoError(t, err)
			assert.Equal(t, map[store.FunctionKey]bool{k: true}, got)
			require.NoError(t, s.ResetTracing(ctx, k))
			got, err = s.Tracing(ctx)
			require.NoError(t, err)
			assert.Empty(t, got)

			// Backlog: waiting events per function, age of the oldest.
			ago := map[string]string{store.SQLite: `datetime('now', '-90 seconds')`, store.Postgres: `now() - interval '90 seconds'`}[tc.dialect]
			for i, st := range []string{"available", "retryable", "completed"} {
				md := fmt.Sprintf(`{"statustrace":{"request_id":"b-%d","namespace":"ns","function":"slow"}}`, i)
				created := "CURRENT_TIMESTAMP"
				if i == 0 {
					created = ago
				}
				fin := "NULL"
				if st == "completed" {
					fin = "CURRENT_TIMESTAMP"
				}
				q := `INSERT INTO river_job (kind, max_attempts, metadata, args, state, created_at, finalized_at) VALUES ('k', 1, ` + castJSON(tc.dialect, 1) + `, ` + castJSON(tc.dialect, 2) + `, '` + st + `', ` + created + `, ` + fin + `)`
				_, err = db.ExecContext(ctx, q, md, "{}")
				require.NoError(t, err)
			}
			bl, err := s.Backlog(ctx)
			require.NoError(t, err)
			var slow *store.Backlog
			for i := range bl {
				if bl[i].Function == "slow" {
					slow = &bl[i]
				}
			}
			require.NotNil(t, slow, "%+v", bl)
			assert.Equal(t, "ns", slow.Namespace)
			assert.Equal(t, int64(2), slow.Waiting, "available and retryable wait; completed does not")
			assert.GreaterOrEqual(t, slow.OldestAgeSeconds, 89.0)
			assert.Less(t, slow.OldestAgeSeconds, 3600.0)

			// Account standings, per tenant.
			require.NoError(t, s.SetStanding(ctx, "acme", "", "arrears"))
			require.NoError(t, s.SetStanding(ctx, "acme", "trial", "suspended"))
			require.NoError(t, s.SetStanding(ctx, "other", "", "suspended"))
			require.NoError(t, s.SetStanding(ctx, "acme", "", "good"))
			st, err := s.Standings(ctx, "acme")
			require.NoError(t, err)
			assert.Equal(t, map[string]string{"": "good", "trial": "suspended"}, st)
			require.NoError(t, s.ResetStanding(ctx, "acme", "trial"))
			st, err = s.Standings(ctx, "acme")
			require.NoError(t, err)
			assert.Equal(t, map[string]string{"": "good"}, st)
		})
	}
}

func castJSON(dialect string, n int) string {
	if dialect == store.Postgres {
		return "$" + string(rune('0'+n)) + "::jsonb"
	}
	return "jsonb(?)"
}

func TestUnknownDialect(t *testing.T) {
	_, err := store.New(nil, "mysql")
	assert.Error(t, err)
}
