package chlocal_test

// These tests start endpoints of their own with deploy/local/start.sh, each
// with a throwaway state and data folder and free ports, as a user would:
// they never touch the endpoint (or the data) of the checkout.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/statustrace/statustrace/exporter/migrate"
	"github.com/statustrace/statustrace/internal/freeport"
	"github.com/statustrace/statustrace/internal/schema"
)

// endpoint is one throwaway local endpoint.
type endpoint struct {
	state, data string
	http, tcp   string // addresses
}

func newEndpoint(t *testing.T) *endpoint {
	if testing.Short() {
		t.Skip("starts endpoints of its own")
	}
	dir := t.TempDir()
	addrs := freeport.Addrs(t, 2)
	e := &endpoint{state: filepath.Join(dir, "state"), data: filepath.Join(dir, "data"), http: addrs[0], tcp: addrs[1]}
	t.Cleanup(func() { _, _ = e.run(t, "stop.sh") })
	return e
}

// run runs a deploy/local script with this endpoint's settings (the
// engine choice is inherited) and returns its stdout, and stderr on failure.
func (e *endpoint) run(t *testing.T, script string, env ...string) (string, error) {
	cmd := exec.Command("bash", filepath.Join("..", script))
	cmd.Env = append(os.Environ(), "STATUSTRACE_LOCAL_STATE="+e.state, "STATUSTRACE_LOCAL_DATA="+e.data,
		"STATUSTRACE_LOCAL_ADDR="+e.http, "STATUSTRACE_LOCAL_TCP_ADDR="+e.tcp, "STATUSTRACE_LOCAL_PROTOCOL=native")
	cmd.Env = append(cmd.Env, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return strings.TrimSpace(string(out)), fmt.Errorf("%s: %w: %s", script, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

func (e *endpoint) start(t *testing.T) driver.Conn {
	dsn, err := e.run(t, "start.sh")
	require.NoError(t, err)
	require.Equal(t, "clickhouse://"+e.tcp, dsn)
	opts, err := clickhouse.ParseDSN(dsn)
	require.NoError(t, err)
	conn, err := clickhouse.Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func (e *endpoint) engine(t *testing.T) string {
	res, err := http.Get("http://" + e.http + "/ping")
	require.NoError(t, err)
	res.Body.Close()
	return res.Header.Get("X-Statustrace-Engine")
}

// TestRetentionAcrossRestart: on the default engine the product's schema,
// with a 20 s retention, loses expired rows by ClickHouse's background TTL
// merges (no OPTIMIZE), keeps the rest across a restart of the endpoint, and
// the expired rows stay gone.
func TestRetentionAcrossRestart(t *testing.T) {
	e := newEndpoint(t)
	conn := e.start(t)
	if eng := e.engine(t); eng != "native" {
		t.Skipf("the %s engine keeps its data in memory: nothing persists, so there is no retention to show", eng)
	}
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const db = "retention_test"
	_, err := migrate.Up(c, conn, migrate.Options{Database: db, Retention: 20 * time.Second})
	require.NoError(t, err)
	for _, tbl := range []string{schema.Transitions, schema.Events} {
		// ClickHouse's default runs a table's TTL merges at most every 4 hours:
		// right for a 3-day window, too slow for a test of 20 seconds.
		require.NoError(t, conn.Exec(c, "ALTER TABLE "+db+"."+tbl+" MODIFY SETTING merge_with_ttl_timeout = 1"))
	}
	insert := func(prefix, at string) {
		q := fmt.Sprintf(`INSERT INTO %s.%s (tenant, request_id, seq, from_state, to_state, time)
			SELECT 't', concat('%s', toString(number)), 1, '', 'QUEUED', %s FROM numbers(1000)`, db, schema.Transitions, prefix, at)
		require.NoError(t, conn.Exec(c, q))
	}
	// Expires 8 s after the insert; a separate insert, so a part of its own
	// (the schema drops whole parts: ttl_only_drop_parts).
	insert("old-", "now64(9) - INTERVAL 12 SECOND")
	insert("new-", "now64(9) + INTERVAL 1 HOUR")
	count := func(conn driver.Conn, tbl, prefix string) uint64 {
		var n uint64
		require.NoError(t, conn.QueryRow(c, fmt.Sprintf("SELECT count() FROM %s.%s WHERE startsWith(request_id, '%s')", db, tbl, prefix)).Scan(&n))
		return n
	}
	require.Equal(t, uint64(1000), count(conn, schema.Transitions, "new-"))

	deadline := time.Now().Add(3 * time.Minute)
	for count(conn, schema.Transitions, "old-")+count(conn, schema.Events, "old-") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("expired rows still there after 3 minutes: transitions %d, events %d",
				count(conn, schema.Transitions, "old-"), count(conn, schema.Events, "old-"))
		}
		time.Sleep(time.Second)
	}

	_, err = e.run(t, "stop.sh")
	require.NoError(t, err)
	conn = e.start(t)
	require.Equal(t, uint64(1000), count(conn, schema.Transitions, "new-"), "rows written before the stop are there after the start")
	require.Equal(t, uint64(1000), count(conn, schema.Events, "new-"))
	require.Zero(t, count(conn, schema.Transitions, "old-"), "expired rows stay gone")
	require.Zero(t, count(conn, schema.Events, "old-"))

	// wipe.sh removes the data folder: the next start is empty.
	_, err = e.run(t, "wipe.sh")
	require.NoError(t, err)
	conn = e.start(t)
	var n uint64
	require.NoError(t, conn.QueryRow(c, "SELECT count() FROM system.databases WHERE name = {db:String}", clickhouse.Named("db", db)).Scan(&n))
	require.Zero(t, n, "after wipe.sh the database is gone")
}

// TestOwnership: an endpoint is reused only from the state folder that
// started it; another checkout (another state folder) on the same address,
// or anything else listening on either address, is a clear error that
// names the address and the variable to change.
func TestOwnership(t *testing.T) {
	a := newEndpoint(t)
	a.start(t)
	again, err := a.run(t, "start.sh")
	require.NoError(t, err, "the same state folder reuses its endpoint")
	require.Equal(t, "clickhouse://"+a.tcp, again)

	other := newEndpoint(t)
	other.http, other.tcp = a.http, a.tcp
	_, err = other.run(t, "start.sh")
	require.Error(t, err, "another state folder must not reuse the endpoint")
	require.Contains(t, err.Error(), a.http)
	require.Contains(t, err.Error(), "STATUSTRACE_LOCAL_ADDR")

	// Something else on the native TCP address.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	third := newEndpoint(t)
	third.tcp = busy.Addr().String()
	_, err = third.run(t, "start.sh")
	require.Error(t, err)
	require.Contains(t, err.Error(), third.tcp)
	require.Contains(t, err.Error(), "STATUSTRACE_LOCAL_TCP_ADDR")

	// The first endpoint still answers, untouched.
	res, err := http.Get("http://" + a.http + "/statustrace/instance")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
}
