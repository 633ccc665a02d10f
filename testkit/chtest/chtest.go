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

// DSN returns a DSN for protocol p: CLICKHOUSE_DSN when it speaks p, else
// CLICKHOUSE_NATIVE_DSN / CLICKHOUSE_HTTP_DSN, else (without CLICKHOUSE_DSN)
// the local endpoint's. It skips the test when a server was named but no
// address for p.
func DSN(t testing.TB, p Protocol) string {
	t.Helper()
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
	name := databaseName(t.Name())

	admin, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatalf("chtest: open: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
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
// test it belongs to.
func databaseName(test string) string {
	n := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(test), "_"), "_")
	if len(n) > 40 {
		n = n[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t_" + n + "_" + hex.EncodeToString(b[:])
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
