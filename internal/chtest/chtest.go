// Package chtest gives each test an isolated ClickHouse database on a real
// engine: the server named by CLICKHOUSE_DSN when it is set, otherwise the
// local endpoint of deploy/local (started once and reused).
//
// NOTE: placeholder API, the implementation lands with issue 2.
package chtest

import (
	"testing"

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

// New creates a fresh database for t and drops it when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	t.Fatal("chtest: not implemented yet")
	return nil
}
