// Package migrate creates and upgrades statustrace's ClickHouse schema
// through versioned migrations. The exporter runs Up on start (create_schema),
// the `statustrace migrate` command runs it on demand, tests run it on a fresh
// database. Applied versions are recorded in schema.Migrations; re-running Up
// is a no-op, a migration whose text changed after release is refused, and a
// database newer than this binary is refused.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"

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
// opts.Retention. Safe to call concurrently from several processes: when
// there is something to apply they take turns (the migration lock, see
// lock.go), every statement is idempotent or guarded, and versions are
// recorded in a ReplacingMergeTree.
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
	if n := len(ms); n > 0 {
		o.upTo = ms[n-1].Version
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
	if err := checkReleased(ms); err != nil {
		return res, err
	}
	applied, err := o.readApplied(ctx, conn)
	if err != nil {
		return res, err
	}
	if len(applied) < len(ms) || !o.checksumsCurrent(applied, ms) {
		// Something to do: one migrator at a time, then read again (the
		// holder before us may have done it).
		release, err := o.lock(ctx, conn)
		if err != nil {
			return res, err
		}
		defer release()
		if applied, err = o.readApplied(ctx, conn); err != nil {
			return res, err
		}
	}
	done := make(map[uint32]bool, len(applied))
	var relabel []Migration // recorded with a legacy checksum: record the current one
	for _, a := range applied {
		if a.Version == 0 || int(a.Version) > len(ms) {
			return res, fmt.Errorf("database %s has schema version %d (%q), newer than this binary knows (%d): upgrade the binary", o.Database, a.Version, a.Name, len(ms))
		}
		m := ms[a.Version-1]
		switch want := m.Checksum(); {
		case a.Checksum == want:
		case a.Checksum == released[m.Version].legacy && released[m.Version].legacy != "":
			relabel = append(relabel, m)
		default:
			return res, fmt.Errorf("migration %d (%q) was applied with checksum %.12s but this binary has %.12s: released migrations must not change, add a new version", a.Version, a.Name, a.Checksum, want)
		}
		done[a.Version] = true
		res.Version = max(res.Version, a.Version)
	}
	for _, m := range relabel {
		if err := o.record(ctx, conn, m); err != nil {
			return res, err
		}
	}
	for _, r := range rendered {
		if done[r.Version] {
			continue
		}
		for i, q := range r.SQL {
			if err := o.exec(ctx, conn, q, r.SkipIf[i], r.Each[i]); err != nil {
				return res, fmt.Errorf("migration %d (%s) statement %d: %w", r.Version, r.Name, i+1, err)
			}
		}
		if err := o.record(ctx, conn, r.Migration); err != nil {
			return res, err
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

// checksumsCurrent reports whether every applied migration is recorded
// with its current checksum (false: some need re-recording).
func (o Options) checksumsCurrent(applied []Applied, ms []Migration) bool {
	for _, a := range applied {
		if a.Version >= 1 && int(a.Version) <= len(ms) && a.Checksum != ms[a.Version-1].Checksum() {
			return false
		}
	}
	return true
}

// record notes m as applied, with its checksum.
func (o Options) record(ctx context.Context, conn Conn, m Migration) error {
	err := conn.Exec(ctx, "INSERT INTO "+o.qualified(schema.Migrations)+
		" (version, name, checksum, applied_at) VALUES (?, ?, ?, now64(3))",
		m.Version, m.Name, m.Checksum())
	if err != nil {
		return fmt.Errorf("record migration %d: %w", m.Version, err)
	}
	return nil
}

// partitionIDRE is what a partition ID may look like before it is put in a
// statement (ClickHouse's IDs are digits, hex or "all").
var partitionIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// exec runs one rendered statement: not at all when its guard says so, once
// per partition when it has an Each query, else once.
func (o Options) exec(ctx context.Context, conn Conn, q, skipIf, each string) error {
	if skipIf != "" {
		var rows []struct {
			N uint64 `ch:"n"`
		}
		if err := conn.Select(ctx, &rows, skipIf); err != nil {
			return fmt.Errorf("guard: %w", err)
		}
		if len(rows) == 1 && rows[0].N != 0 {
			return nil
		}
	}
	if each == "" {
		err := conn.Exec(ctx, q)
		var ex *clickhouse.Exception
		if err != nil && strings.HasPrefix(q, "EXCHANGE TABLES ") && errors.As(err, &ex) && ex.Code == 48 { // NOT_IMPLEMENTED
			return o.exchangeByRename(ctx, conn, q)
		}
		return err
	}
	var parts []struct {
		ID string `ch:"partition_id"`
	}
	if err := conn.Select(ctx, &parts, each); err != nil {
		return fmt.Errorf("list partitions: %w", err)
	}
	for _, p := range parts {
		if !partitionIDRE.MatchString(p.ID) {
			return fmt.Errorf("partition id %q: unexpected characters", p.ID)
		}
		stmt := strings.ReplaceAll(q, PartitionPlaceholder, "'"+p.ID+"'")
		err := conn.Exec(ctx, stmt)
		var ex *clickhouse.Exception
		if err != nil && errors.As(err, &ex) && (ex.Code == 424 || ex.Code == 48) { // CANNOT_LINK, NOT_IMPLEMENTED
			err = o.moveByCopy(ctx, conn, stmt, p.ID)
		}
		if err != nil {
			return fmt.Errorf("partition %s: %w", p.ID, err)
		}
	}
	return nil
}

var exchangeRE = regexp.MustCompile("^EXCHANGE TABLES (`[^`]+`\\.`([^`]+)`) AND (`[^`]+`\\.`([^`]+)`)(.*)$")

// exchangeByRename does what EXCHANGE TABLES a AND b does where the server
// cannot (it needs an atomic rename of files: Linux or macOS, an Atomic
// database; chDB compiled to WebAssembly has neither): three renames in one
// statement, then every materialized view that read from a (and now follows
// the renamed table by its UUID) is pointed at the name again with MODIFY
// QUERY. Between the renames and the last MODIFY QUERY an insert into a
// would miss the views, so this is only for single-writer setups (a
// development endpoint, where the migrating exporter is the writer and
// waits for the schema), which is where such servers are.
func (o Options) exchangeByRename(ctx context.Context, conn Conn, q string) error {
	m := exchangeRE.FindStringSubmatch(q)
	if m == nil {
		return fmt.Errorf("exchange fallback: cannot parse %q", q)
	}
	a, aName, b, bName, onCluster := m[1], m[2], m[3], m[4], m[5]
	swap := o.qualified(aName + "_swap")
	if err := conn.Exec(ctx, "RENAME TABLE "+a+" TO "+swap+", "+b+" TO "+a+", "+swap+" TO "+b+onCluster); err != nil {
		return fmt.Errorf("exchange by rename: %w", err)
	}
	var deps []struct {
		Views []string `ch:"dependencies_table"`
	}
	if err := conn.Select(ctx, &deps, "SELECT dependencies_table FROM system.tables WHERE database = ? AND name = ?", o.Database, bName); err != nil {
		return fmt.Errorf("exchange by rename: views of %s: %w", bName, err)
	}
	for _, d := range deps {
		for _, view := range d.Views {
			var sel []struct {
				AsSelect string `ch:"as_select"`
			}
			if err := conn.Select(ctx, &sel, "SELECT as_select FROM system.tables WHERE database = ? AND name = ?", o.Database, view); err != nil || len(sel) != 1 {
				return fmt.Errorf("exchange by rename: query of view %s: %v", view, err)
			}
			if err := conn.Exec(ctx, "ALTER TABLE "+o.qualified(view)+onCluster+" MODIFY QUERY "+sel[0].AsSelect); err != nil {
				return fmt.Errorf("exchange by rename: re-point view %s: %w", view, err)
			}
		}
	}
	return nil
}

var moveRE = regexp.MustCompile("^ALTER TABLE (`[^`]+`\\.`[^`]+`)(.*) MOVE PARTITION ID '[^']*' TO TABLE (`[^`]+`\\.`[^`]+`)$")

// moveByCopy does what ALTER TABLE src MOVE PARTITION ID id TO TABLE dst
// does where the server cannot hard-link parts (chDB compiled to
// WebAssembly): it copies the partition's rows and then drops the
// partition. The copy feeds dst's materialized views, which only hold
// idempotent aggregates, so rows they already counted change nothing; an
// interruption between the copy and the drop copies again next time, and
// the copies collapse on merge.
func (o Options) moveByCopy(ctx context.Context, conn Conn, q, id string) error {
	m := moveRE.FindStringSubmatch(q)
	if m == nil {
		return fmt.Errorf("move fallback: cannot parse %q", q)
	}
	src, onCluster, dst := m[1], m[2], m[3]
	if err := conn.Exec(ctx, "INSERT INTO "+dst+" SELECT * FROM "+src+" WHERE _partition_id = '"+id+"'"); err != nil {
		return fmt.Errorf("move by copy: %w", err)
	}
	if err := conn.Exec(ctx, "ALTER TABLE "+src+onCluster+" DROP PARTITION ID '"+id+"'"); err != nil {
		return fmt.Errorf("move by copy: drop the copied partition: %w", err)
	}
	return nil
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
