package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"
)

// The request-ID lookup must use the index, not scan River's job table.
func TestSQLiteLookupUsesIndex(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "p.db"))
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	defer db.Close()
	m, err := rivermigrate.New(riversqlite.New(db), nil)
	require.NoError(t, err)
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	require.NoError(t, err)
	s, err := New(db, SQLite)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(ctx))

	rows, err := db.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT id FROM river_job WHERE `+requestIDExpr[SQLite]+` = ? ORDER BY id DESC LIMIT 1`, "x")
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.Contains(t, strings.Join(plan, "\n"), "statustrace_river_job_request_id")
}
