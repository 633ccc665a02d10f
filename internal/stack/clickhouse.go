package stack

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ResolveDSN returns CLICKHOUSE_DSN when it is set; otherwise it starts the
// local ClickHouse endpoint (deploy/local/start.sh, idempotent: an endpoint
// already running is reused) and returns its DSN. started says whether the
// local endpoint is in use (it stays running afterwards: `make
// clickhouse-stop` stops it).
func ResolveDSN(ctx context.Context, root string) (dsn string, local bool, err error) {
	if dsn := os.Getenv("CLICKHOUSE_DSN"); dsn != "" {
		return dsn, false, nil
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "deploy", "local", "start.sh"))
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	// Its own process group: a Ctrl-C during the (long, first-time) npm
	// install reaches the parent, which cancels ctx; the endpoint it
	// starts detaches itself anyway.
	out, err := cmd.Output()
	if err != nil {
		return "", true, fmt.Errorf("start the local ClickHouse endpoint (deploy/local/start.sh): %w", err)
	}
	return strings.TrimSpace(string(out)), true, nil
}

// ExporterEnv turns a clickhouse-go DSN into the environment of
// collector/config.yaml: CLICKHOUSE_ENDPOINT (the DSN without credentials
// and database; its query options are kept), CLICKHOUSE_USER and
// CLICKHOUSE_PASSWORD.
func ExporterEnv(dsn string) ([]string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("ClickHouse DSN %q: want scheme://[user[:password]@]host:port[/database][?options]", redact(dsn))
	}
	user, pass := "default", ""
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	ep := url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: u.RawQuery}
	return []string{
		"CLICKHOUSE_ENDPOINT=" + ep.String(),
		"CLICKHOUSE_USER=" + user,
		"CLICKHOUSE_PASSWORD=" + pass,
	}, nil
}

// redact hides a DSN's password for error messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return dsn
}

// Open connects to the DSN's server with database as the default database
// (empty: the DSN's own).
func Open(dsn, database string) (driver.Conn, error) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("ClickHouse DSN: %w", err)
	}
	if database != "" {
		opts.Auth.Database = database
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open ClickHouse: %w", err)
	}
	return conn, nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// RecreateDatabase drops database (if it exists) and creates it empty.
// The name must be a plain identifier: it cannot be a bind parameter.
func RecreateDatabase(ctx context.Context, dsn, database string) error {
	if !identRE.MatchString(database) {
		return fmt.Errorf("database name %q: letters, digits and '_' only", database)
	}
	conn, err := Open(dsn, "")
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+database); err != nil {
		return fmt.Errorf("drop database %s: %w", database, err)
	}
	if err := conn.Exec(ctx, "CREATE DATABASE "+database); err != nil {
		return fmt.Errorf("create database %s: %w", database, err)
	}
	return nil
}
