package chlocal_test

// The native engine keeps, per connection without a session, the database
// and settings the last request left on it, and skips a USE or SET already
// in effect (engine-native.mjs, runCached). These tests send requests in
// sequences where a wrong cache shows: a setting, database or SET that
// outlives its request, or a failed SET taken for one in effect.

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/statustrace/statustrace/testkit/chtest"
)

// settingsSeen returns max_block_size and optimize_on_insert as a request
// with these settings sees them: the value, or "default" when unchanged.
func settingsSeen(t *testing.T, c context.Context, conn driver.Conn, s clickhouse.Settings) map[string]string {
	t.Helper()
	if s != nil {
		c = clickhouse.Context(c, clickhouse.WithSettings(s))
	}
	rows, err := conn.Query(c, "SELECT name, value, changed FROM system.settings WHERE name IN ('max_block_size', 'optimize_on_insert')")
	require.NoError(t, err)
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var name, value string
		var changed uint8
		require.NoError(t, rows.Scan(&name, &value, &changed))
		if changed == 0 {
			value = "default"
		}
		got[name] = value
	}
	require.NoError(t, rows.Err())
	return got
}

func exceptionCode(t *testing.T, err error) int32 {
	t.Helper()
	var ex *clickhouse.Exception
	require.True(t, errors.As(err, &ex), "want a ClickHouse exception, got %v", err)
	return ex.Code
}

// TestSettingsFollowTheirRequest: each request sees its own settings and the
// defaults of every other, whatever the previous request set.
func TestSettingsFollowTheirRequest(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		for i, step := range []struct {
			set      clickhouse.Settings
			mbs, ooi string
		}{
			{clickhouse.Settings{"max_block_size": 1234}, "1234", "default"},
			{clickhouse.Settings{"max_block_size": 1234}, "1234", "default"}, // already in effect
			{clickhouse.Settings{"max_block_size": 4321, "optimize_on_insert": 0}, "4321", "0"},
			{clickhouse.Settings{"optimize_on_insert": 0}, "default", "0"},
			{nil, "default", "default"},
			{clickhouse.Settings{"max_block_size": 1234}, "1234", "default"},
			{nil, "default", "default"},
		} {
			got := settingsSeen(t, c, db.Conn, step.set)
			require.Equal(t, map[string]string{"max_block_size": step.mbs, "optimize_on_insert": step.ooi}, got, "request %d, settings %v", i, step.set)
		}
	})
}

// TestInsertSettingsFollowTheirRequest: the same for INSERTs, on the shared
// connection and on those of async_insert (lane "async"). A column's
// DEFAULT reads the setting in the INSERT's own context.
func TestInsertSettingsFollowTheirRequest(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		require.NoError(t, db.Conn.Exec(c, "CREATE TABLE ins (n UInt32, mbs String DEFAULT toString(getSetting('max_block_size'))) ENGINE = MergeTree ORDER BY n"))
		var def string
		require.NoError(t, db.Conn.QueryRow(c, "SELECT default FROM system.settings WHERE name = 'max_block_size'").Scan(&def))
		n := uint32(0)
		for _, lane := range []clickhouse.Settings{{}, {"async_insert": 1, "wait_for_async_insert": 1}} {
			for _, mbs := range []string{"1234", "1234", "", "4321", ""} {
				s := clickhouse.Settings{}
				for k, v := range lane {
					s[k] = v
				}
				want := def
				if mbs != "" {
					s["max_block_size"] = mbs
					want = mbs
				}
				n++
				batch, err := db.Conn.PrepareBatch(clickhouse.Context(c, clickhouse.WithSettings(s)), "INSERT INTO ins (n)")
				require.NoError(t, err)
				require.NoError(t, batch.Append(n))
				require.NoError(t, batch.Send())
				var got string
				require.NoError(t, db.Conn.QueryRow(c, "SELECT mbs FROM ins WHERE n = ?", n).Scan(&got))
				require.Equal(t, want, got, "insert %d, settings %v", n, s)
			}
		}
	})
}

// TestDatabaseFollowsItsRequest: a request without a database runs in
// default after one in another database, and a database dropped since the
// last request on it fails the next one as it did before the cache.
func TestDatabaseFollowsItsRequest(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		noDB := openWith(t, db, func(o *clickhouse.Options) { o.Auth.Database = "" })
		for _, step := range []struct {
			conn driver.Conn
			want string
		}{{db.Conn, db.Name}, {noDB, "default"}, {db.Conn, db.Name}, {db.Conn, db.Name}, {noDB, "default"}, {noDB, "default"}} {
			var got string
			require.NoError(t, step.conn.QueryRow(c, "SELECT currentDatabase()").Scan(&got))
			require.Equal(t, step.want, got)
		}

		gone := db.Name + "_gone"
		require.NoError(t, db.Conn.Exec(c, "CREATE DATABASE "+gone))
		t.Cleanup(func() { _ = db.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+gone) })
		inGone := openWith(t, db, func(o *clickhouse.Options) { o.Auth.Database = gone })
		var one uint8
		require.NoError(t, inGone.QueryRow(c, "SELECT 1").Scan(&one))
		// Dropped from within: the connection's last USE was of gone.
		require.NoError(t, inGone.Exec(c, "DROP DATABASE "+gone))
		err := inGone.QueryRow(c, "SELECT 1").Scan(&one)
		require.Equal(t, int32(81), exceptionCode(t, err), "UNKNOWN_DATABASE")
	})
}

// TestFailedSetDoesNotStick: a request whose setting fails does not leave
// it, or the others it set, to the next request, and the same failing
// setting fails again.
func TestFailedSetDoesNotStick(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		bad := clickhouse.Context(c, clickhouse.WithSettings(clickhouse.Settings{"max_block_size": "many"}))
		var one uint8
		for i := 0; i < 2; i++ {
			require.Error(t, db.Conn.QueryRow(bad, "SELECT 1").Scan(&one), "attempt %d", i)
		}
		unknown := clickhouse.Context(c, clickhouse.WithSettings(clickhouse.Settings{
			"max_block_size": 777, "optimize_on_insert": 0, "statustrace_no_such_setting": 1,
		}))
		require.Equal(t, int32(115), exceptionCode(t, db.Conn.QueryRow(unknown, "SELECT 1").Scan(&one)), "UNKNOWN_SETTING")
		require.Equal(t, map[string]string{"max_block_size": "default", "optimize_on_insert": "default"}, settingsSeen(t, c, db.Conn, nil))
		require.Equal(t, map[string]string{"max_block_size": "777", "optimize_on_insert": "default"},
			settingsSeen(t, c, db.Conn, clickhouse.Settings{"max_block_size": 777}))
	})
}

// TestStatementSetDoesNotOutliveItsRequest: SET or USE sent as a query
// without a session lasts for that request only, as on a server's HTTP
// interface. (Read on another client connection: over the native protocol a
// server keeps them for the connection they were sent on.) chdb-wasm keeps
// them on its shared connection and is skipped.
func TestStatementSetDoesNotOutliveItsRequest(t *testing.T) {
	if localEngine(t, chtest.NewOn(t, chtest.HTTP)) == "wasm" {
		t.Skip("chdb-wasm keeps a SET sent without a session on its shared connection")
	}
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		other := openWith(t, db, func(*clickhouse.Options) {})
		require.NoError(t, db.Conn.Exec(c, "SET max_block_size = 999"))
		require.Equal(t, map[string]string{"max_block_size": "default", "optimize_on_insert": "default"}, settingsSeen(t, c, other, nil))
		for i := 0; i < 2; i++ {
			require.NoError(t, db.Conn.Exec(clickhouse.Context(c, clickhouse.WithSettings(clickhouse.Settings{"optimize_on_insert": 0})), "USE default"))
			var got string
			require.NoError(t, other.QueryRow(c, "SELECT currentDatabase()").Scan(&got))
			require.Equal(t, db.Name, got, fmt.Sprintf("after USE default, round %d", i))
			require.Equal(t, map[string]string{"max_block_size": "default", "optimize_on_insert": "default"}, settingsSeen(t, c, other, nil))
		}
	})
}

// TestParametersFollowTheirRequest: a parameter sent again with the same or
// another value.
func TestParametersFollowTheirRequest(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		for _, v := range []string{"a", "a", "b", "it's", "a"} {
			var got string
			require.NoError(t, db.Conn.QueryRow(c, "SELECT {p:String}", clickhouse.Named("p", v)).Scan(&got))
			require.Equal(t, v, got)
		}
	})
}
