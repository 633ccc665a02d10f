// Package chtest gives each test an isolated ClickHouse database on a real
// engine: the server named by CLICKHOUSE_DSN when it is set, otherwise the
// local endpoint of deploy/local, started once (by deploy/local/start.sh,
// which is idempotent and locked, so parallel test binaries share one) and
// left running for the next run; `make clickhouse-stop` stops it.
//
// New uses that DSN's protocol (the local endpoint's default is the native
// TCP protocol, as in production). NewOn asks for one protocol: the local
// endpoint serves both; against a server, CLICKHOUSE_NATIVE_DSN and
// CLICKHOUSE_HTTP_DSN name the other protocol's address, and a test that
// needs a protocol with no address is skipped, saying so.
//
// Under -short without CLICKHOUSE_DSN every test that asks for a database
// is skipped (go test -short needs no ClickHouse, Node or npm). Database
// names carry their creation time; the first database a test binary makes
// on a server sweeps test databases older than StaleAfter, which a killed
// run (its cleanups never ran) left behind.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DB is one test's database.
type DB struct {
	Name    string              // database name, unique per test
	DSN     string              // DSN that selects this database
	Options *clickhouse.Options // parsed DSN, Auth.Database = Name
	Conn    driver.Conn         // open connection using this database
}

// Protocol is one of ClickHouse's client interfaces.
type Protocol string

const (
	Native Protocol = "native" // the TCP protocol (clickhouse://, tcp://), production's default
	HTTP   Protocol = "http"   // the HTTP interface (http://, https://)
)

// Protocols lists both, for tests that run on each.
var Protocols = []Protocol{Native, HTTP}

// ProtocolOf tells a DSN's protocol from its scheme.
func ProtocolOf(dsn string) Protocol {
	if strings.HasPrefix(dsn, "http://") || strings.HasPrefix(dsn, "https://") {
		return HTTP
	}
	return Native
}

// protocolEnv names the variable that gives a server's address for a
// protocol other than CLICKHOUSE_DSN's.
var protocolEnv = map[Protocol]string{Native: "CLICKHOUSE_NATIVE_DSN", HTTP: "CLICKHOUSE_HTTP_DSN"}

type resolved struct {
	dsn string
	err error
}

var (
	dsnMu  sync.Mutex
	dsnFor = map[Protocol]*resolved{}
)

// BaseDSN returns the DSN of the ClickHouse every test uses, starting the
// local endpoint if needed. It fails the test if none can be had.
func BaseDSN(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv("CLICKHOUSE_DSN"); dsn != "" {
		return dsn
	}
	return DSN(t, Native)
}

// skipShort skips t under -short unless a server is named: -short runs the
// unit tests only, on a machine without ClickHouse, Node or npm (the local
// endpoint needs the latter two).
func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() && os.Getenv("CLICKHOUSE_DSN") == "" {
		t.Skip("chtest: needs ClickHouse; -short without CLICKHOUSE_DSN starts no local endpoint")
	}
}

// DSN returns a DSN for protocol p: CLICKHOUSE_DSN when it speaks p, else
// CLICKHOUSE_NATIVE_DSN / CLICKHOUSE_HTTP_DSN, else (without CLICKHOUSE_DSN)
// the local endpoint's. It skips the test when a server was named but no
// address for p.
func DSN(t testing.TB, p Protocol) string {
	t.Helper()
	skipShort(t)
	if dsn := os.Getenv("CLICKHOUSE_DSN"); dsn != "" && ProtocolOf(dsn) == p {
		return dsn
	}
	if dsn := os.Getenv(protocolEnv[p]); dsn != "" {
		return dsn
	}
	if os.Getenv("CLICKHOUSE_DSN") != "" {
		t.Skipf("chtest: CLICKHOUSE_DSN speaks %s; set %s to run this test on %s too", ProtocolOf(os.Getenv("CLICKHOUSE_DSN")), protocolEnv[p], p)
	}
	dsnMu.Lock()
	r := dsnFor[p]
	if r == nil {
		r = &resolved{}
		r.dsn, r.err = startLocal(p)
		dsnFor[p] = r
	}
	dsnMu.Unlock()
	if r.err != nil {
		t.Fatalf("chtest: no ClickHouse: %v", r.err)
	}
	return r.dsn
}

// startLocal starts (or finds) this checkout's local endpoint and returns
// its DSN for protocol p.
func startLocal(p Protocol) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", filepath.Join(root, "deploy", "local", "start.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "STATUSTRACE_LOCAL_PROTOCOL="+string(p))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("start local endpoint (deploy/local/start.sh): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test's directory")
		}
		dir = parent
	}
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// New creates a fresh database for t on the default DSN's protocol and drops
// it when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	return newOn(t, BaseDSN(t))
}

// NewOn is New on protocol p (see DSN).
func NewOn(t testing.TB, p Protocol) *DB {
	t.Helper()
	return newOn(t, DSN(t, p))
}

func newOn(t testing.TB, base string) *DB {
	t.Helper()
	opts, err := clickhouse.ParseDSN(base)
	if err != nil {
		t.Fatalf("chtest: parse DSN: %v", err)
	}
	name := databaseName(t.Name(), time.Now())

	admin, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatalf("chtest: open: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sweepOnce(ctx, t, admin, base)
	if err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		_ = admin.Close()
		t.Fatalf("chtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Logf("chtest: drop database %s: %v", name, err)
		}
		_ = admin.Close()
	})

	dbOpts := *opts
	dbOpts.Auth.Database = name
	conn, err := clickhouse.Open(&dbOpts)
	if err != nil {
		t.Fatalf("chtest: open %s: %v", name, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &DB{Name: name, DSN: withDatabase(base, name), Options: &dbOpts, Conn: conn}
}

// databaseName makes a unique, valid database name that still says which
// test it belongs to and when it was made (for Sweep).
func databaseName(test string, now time.Time) string {
	n := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(test), "_"), "_")
	if len(n) > 40 {
		n = n[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("t_%s_%d_%s", n, now.Unix(), hex.EncodeToString(b[:]))
}

// StaleAfter is how old a test database must be for Sweep to drop it: far
// longer than any test runs, so a parallel run's databases are safe.
const StaleAfter = time.Hour

// testDatabaseRE matches databaseName's names; group 1 is the Unix time.
var testDatabaseRE = regexp.MustCompile(`^t_[a-z0-9_]*_([0-9]{9,11})_[0-9a-f]{8}$`)

// Stale picks, from database names, the test databases made before cutoff.
// Other names (the product's, the demo's, a user's) are never picked.
func Stale(names []string, cutoff time.Time) []string {
	var out []string
	for _, n := range names {
		m := testDatabaseRE.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		if sec, err := strconv.ParseInt(m[1], 10, 64); err == nil && time.Unix(sec, 0).Before(cutoff) {
			out = append(out, n)
		}
	}
	return out
}

// Sweep drops the test databases older than StaleAfter: a killed run
// (timeout, Ctrl-C) never reaches its cleanups and leaves them behind on a
// shared server.
func Sweep(ctx context.Context, conn driver.Conn, now time.Time) ([]string, error) {
	rows, err := conn.Query(ctx, "SELECT name FROM system.databases WHERE startsWith(name, 't_')")
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list databases: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	stale := Stale(names, now.Add(-StaleAfter))
	for _, n := range stale {
		// n matched testDatabaseRE: letters, digits and underscores only.
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+n); err != nil {
			return nil, fmt.Errorf("drop stale database %s: %w", n, err)
		}
	}
	return stale, nil
}

var swept sync.Map // base DSN → *sync.Once

// sweepOnce sweeps each server once per test binary; a failure is logged,
// not fatal (the test's own database is what matters).
func sweepOnce(ctx context.Context, t testing.TB, conn driver.Conn, base string) {
	once, _ := swept.LoadOrStore(base, new(sync.Once))
	once.(*sync.Once).Do(func() {
		dropped, err := Sweep(ctx, conn, time.Now())
		if err != nil {
			t.Logf("chtest: sweep: %v", err)
		} else if len(dropped) > 0 {
			t.Logf("chtest: dropped %d stale test databases left by a killed run", len(dropped))
		}
	})
}

// withDatabase sets the database of a DSN (the URL path for clickhouse-go).
func withDatabase(dsn, db string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	hostPart, query, _ := strings.Cut(rest, "?")
	host, _, _ := strings.Cut(hostPart, "/")
	out := scheme + "://" + host + "/" + db
	if query != "" {
		out += "?" + query
	}
	return out
}
