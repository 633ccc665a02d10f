// Package migrate creates and upgrades statustrace's ClickHouse schema
// through versioned migrations. The exporter runs Up on start (create_schema),
// the `statustrace migrate` command runs it on demand, tests run it on a fresh
// database. Applied versions are recorded in schema.Migrations; re-running Up
// is a no-op, a migration whose text changed after release is refused, and a
// database newer than this binary is refused.
package migrate

import (
	"context"
	"fmt"
	"strconv"

	"github.com/statustrace/statustrace/internal/schema"
)

// Conn is the part of a ClickHouse connection Up needs. clickhouse-go's
// driver.Conn satisfies it.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Select(ctx context.Context, dest any, query string, args ...any) error
}

// Applied is one recorded migration.
type Applied struct {
	Version  uint32 `ch:"version"`
	Name     string `ch:"name"`
	Checksum string `ch:"checksum"`
}

// Result says what Up did.
type Result struct {
	Applied          []uint32 // versions applied by this call, in order
	Version          uint32   // schema version after the call
	RetentionChanged bool     // the TTLs and the retention setting were (re)written
}

// Up brings the database to the latest schema version and the tables' TTL to
// opts.Retention. Safe to call concurrently from several processes: every
// statement is idempotent and versions are recorded in a ReplacingMergeTree.
func Up(ctx context.Context, conn Conn, opts Options) (Result, error) {
	return up(ctx, conn, opts, builtin)
}

// Status returns the recorded migrations, oldest first, and the latest
// version this binary knows.
func Status(ctx context.Context, conn Conn, opts Options) (applied []Applied, latest uint32, err error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, 0, err
	}
	applied, err = o.readApplied(ctx, conn)
	return applied, uint32(len(builtin)), err
}

func up(ctx context.Context, conn Conn, opts Options, ms []Migration) (Result, error) {
	var res Result
	o, err := opts.withDefaults()
	if err != nil {
		return res, fmt.Errorf("migrate options: %w", err)
	}
	if !o.AutoStatistics {
		o.AutoStatistics = hasMergeTreeSetting(ctx, conn, "auto_statistics_types")
	}
	rendered, err := o.renderAll(ms)
	if err != nil {
		return res, err
	}
	for _, q := range o.bootstrapSQL() {
		if err := conn.Exec(ctx, q); err != nil {
			return res, fmt.Errorf("bootstrap schema %s: %w", o.Database, err)
		}
	}
	applied, err := o.readApplied(ctx, conn)
	if err != nil {
		return res, err
	}
	done := make(map[uint32]bool, len(applied))
	for _, a := range applied {
		if a.Version == 0 || int(a.Version) > len(ms) {
			return res, fmt.Errorf("database %s has schema version %d (%q), newer than this binary knows (%d): upgrade the binary", o.Database, a.Version, a.Name, len(ms))
		}
		if want := ms[a.Version-1].Checksum(); a.Checksum != want {
			return res, fmt.Errorf("migration %d (%q) was applied with checksum %.12s but this binary has %.12s: released migrations must not change, add a new version", a.Version, a.Name, a.Checksum, want)
		}
		done[a.Version] = true
		res.Version = max(res.Version, a.Version)
	}
	for _, r := range rendered {
		if done[r.Version] {
			continue
		}
		for i, q := range r.SQL {
			if err := conn.Exec(ctx, q); err != nil {
				return res, fmt.Errorf("migration %d (%s) statement %d: %w", r.Version, r.Name, i+1, err)
			}
		}
		err := conn.Exec(ctx, "INSERT INTO "+o.qualified(schema.Migrations)+
			" (version, name, checksum, applied_at) VALUES (?, ?, ?, now64(3))",
			r.Version, r.Name, r.Checksum())
		if err != nil {
			return res, fmt.Errorf("record migration %d: %w", r.Version, err)
		}
		res.Applied = append(res.Applied, r.Version)
		res.Version = r.Version
	}
	changed, err := o.reconcileRetention(ctx, conn)
	if err != nil {
		return res, err
	}
	res.RetentionChanged = changed
	return res, nil
}

// hasMergeTreeSetting reports whether the server knows a MergeTree setting.
// A failed look-up counts as no: the DDL rendered without the setting works
// on every server.
func hasMergeTreeSetting(ctx context.Context, conn Conn, name string) bool {
	var rows []struct {
		Name string `ch:"name"`
	}
	if err := conn.Select(ctx, &rows, "SELECT name FROM system.merge_tree_settings WHERE name = ?", name); err != nil {
		return false
	}
	return len(rows) == 1
}

func (o Options) readApplied(ctx context.Context, conn Conn) ([]Applied, error) {
	var rows []Applied
	err := conn.Select(ctx, &rows, "SELECT version, argMax(name, applied_at) AS name, argMax(checksum, applied_at) AS checksum FROM "+
		o.qualified(schema.Migrations)+" GROUP BY version ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	return rows, nil
}

// reconcileRetention makes the TTLs and the retention setting match o.Retention
// when the stored setting differs (or is missing). The setting is written
// last, so an interrupted change is redone by the next Up.
func (o Options) reconcileRetention(ctx context.Context, conn Conn) (bool, error) {
	var rows []struct {
		Value string `ch:"value"`
	}
	err := conn.Select(ctx, &rows, "SELECT argMax("+schema.ColSettingValue+", "+schema.ColSettingUpdatedAt+") AS value FROM "+
		o.qualified(schema.Settings)+" WHERE "+schema.ColSettingName+" = ? GROUP BY "+schema.ColSettingName, schema.SettingRetentionSeconds)
	if err != nil {
		return false, fmt.Errorf("read retention setting: %w", err)
	}
	want := strconv.FormatInt(o.retentionSeconds(), 10)
	if len(rows) == 1 && rows[0].Value == want {
		return false, nil
	}
	for _, q := range o.retentionSQL() {
		if err := conn.Exec(ctx, q); err != nil {
			return false, fmt.Errorf("set retention %s: %w", o.Retention, err)
		}
	}
	err = conn.Exec(ctx, "INSERT INTO "+o.qualified(schema.Settings)+" ("+schema.ColSettingName+", "+schema.ColSettingValue+", "+
		schema.ColSettingUpdatedAt+") VALUES (?, ?, now64(3))", schema.SettingRetentionSeconds, want)
	if err != nil {
		return false, fmt.Errorf("record retention setting: %w", err)
	}
	return true, nil
}
