package queries

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/statustrace/statustrace/internal/schema"
)

// InstallOptions say where the views go.
type InstallOptions struct {
	// Database is the statustrace database (default schema.DefaultDatabase).
	// It must be the connection's default database: the views' unqualified
	// table names (and the retention cutoff's settings table) are resolved
	// against it when the view is created.
	Database string
	// Cluster, when set, creates the views ON CLUSTER.
	Cluster string
}

var (
	installIdentRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	installClusterRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// viewComment marks a view with the hash of its SQL, so Install can tell
// whether the installed view is this binary's.
func viewComment(sql string) string {
	h := sha256.Sum256([]byte(sql))
	return "statustrace view " + hex.EncodeToString(h[:8])
}

type viewStmt struct {
	name, comment         string
	create, replace, drop string
}

func viewStatements(opts InstallOptions) ([]viewStmt, error) {
	if opts.Database == "" {
		opts.Database = schema.DefaultDatabase
	}
	if !installIdentRE.MatchString(opts.Database) {
		return nil, fmt.Errorf("database %q: want letters, digits and _", opts.Database)
	}
	onCluster := ""
	if opts.Cluster != "" {
		if !installClusterRE.MatchString(opts.Cluster) {
			return nil, fmt.Errorf("cluster %q: want letters, digits, _ . and -", opts.Cluster)
		}
		onCluster = " ON CLUSTER " + quoteIdent(opts.Cluster)
	}
	out := make([]viewStmt, 0, len(Views))
	for _, v := range Views {
		sql := compiled.sql[v]
		c := viewComment(sql)
		name := quoteIdent(opts.Database) + "." + quoteIdent(v) + onCluster
		// c is hex and fixed text: safe inside quotes.
		body := " AS\n" + sql + "\nCOMMENT '" + c + "'"
		out = append(out, viewStmt{
			name: v, comment: c,
			create:  "CREATE VIEW IF NOT EXISTS " + name + body,
			replace: "CREATE OR REPLACE VIEW " + name + body,
			drop:    "DROP VIEW IF EXISTS " + name,
		})
	}
	return out, nil
}

// ViewStatements returns the CREATE OR REPLACE VIEW statements that install
// the views (what Install runs when a view is missing or differs).
func ViewStatements(opts InstallOptions) ([]string, error) {
	vs, err := viewStatements(opts)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.replace
	}
	return out, nil
}

// Install creates the parameterized views (Views) so Grafana and
// clickhouse-client can use them as they are, or replaces those that differ
// from this binary's (each view carries the hash of its SQL as its comment).
// Views hold no data, so this is safe to repeat; `statustrace migrate` runs
// it after the schema migrations and `statustrace serve` on start.
//
// Engines that cannot replace a view atomically (the local embedded engine:
// no RENAME EXCHANGE) get DROP and CREATE instead, leaving the view missing
// for a moment.
func Install(ctx context.Context, conn Conn, opts InstallOptions) error {
	vs, err := viewStatements(opts)
	if err != nil {
		return err
	}
	if opts.Database == "" {
		opts.Database = schema.DefaultDatabase
	}
	var cur string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&cur); err != nil {
		return fmt.Errorf("install views: current database: %w", err)
	}
	if cur != opts.Database {
		return fmt.Errorf("install views: the connection's default database is %q, not %q: select %q in the DSN", cur, opts.Database, opts.Database)
	}
	installed, err := installedComments(ctx, conn)
	if err != nil {
		return err
	}
	for _, v := range vs {
		c, exists := installed[v.name]
		switch {
		case exists && c == v.comment:
			continue
		case !exists:
			err = conn.Exec(ctx, v.create)
		default:
			err = conn.Exec(ctx, v.replace)
			if err != nil && isNotImplemented(err) {
				if err = conn.Exec(ctx, v.drop); err == nil {
					err = conn.Exec(ctx, v.create)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("install view %s: %w", v.name, err)
		}
	}
	return nil
}

func installedComments(ctx context.Context, conn Conn) (map[string]string, error) {
	rows, err := conn.Query(ctx, "SELECT name, comment FROM system.tables WHERE database = currentDatabase()")
	if err != nil {
		return nil, fmt.Errorf("install views: list tables: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, comment string
		if err := rows.Scan(&name, &comment); err != nil {
			return nil, fmt.Errorf("install views: list tables: %w", err)
		}
		out[name] = comment
	}
	return out, rows.Err()
}

// isNotImplemented reports ClickHouse's NOT_IMPLEMENTED (code 48).
func isNotImplemented(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return ex.Code == 48
	}
	return strings.Contains(err.Error(), "code: 48,") || strings.Contains(err.Error(), "NOT_IMPLEMENTED")
}
