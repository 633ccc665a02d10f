// Package chtest gives each test an isolated ClickHouse database on a real
// engine: the server named by CLICKHOUSE_DSN when it is set, otherwise the
// local endpoint of deploy/local, started once (by deploy/local/start.sh,
// which is idempotent and locked, so parallel test binaries share one) and
// left running for the next run; `make clickhouse-stop` stops it.
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

var (
	dsnOnce sync.Once
	dsnVal  string
	dsnErr  error
)

// BaseDSN returns the DSN of the ClickHouse every test uses, starting the
// local endpoint if needed. It fails the test if none can be had.
func BaseDSN(t testing.TB) string {
	t.Helper()
	dsnOnce.Do(func() { dsnVal, dsnErr = resolveDSN() })
	if dsnErr != nil {
		t.Fatalf("chtest: no ClickHouse: %v", dsnErr)
	}
	return dsnVal
}

func resolveDSN() (string, error) {
	if dsn := os.Getenv("CLICKHOUSE_DSN"); dsn != "" {
		return dsn, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", filepath.Join(root, "deploy", "local", "start.sh"))
	cmd.Dir = root
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

// New creates a fresh database for t and drops it when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	base := BaseDSN(t)
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
