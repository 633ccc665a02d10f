package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/internal/sqltmpl"
)

// Options select where and how the schema is created.
type Options struct {
	// Database holds every statustrace table. Default schema.DefaultDatabase.
	Database string
	// Cluster, when set, makes every statement ON CLUSTER, every table a
	// Replicated one and puts Distributed tables (named as in internal/schema)
	// in front of the per-shard tables (named with schema.LocalSuffix).
	Cluster string
	// PerNode, with Cluster, is a cluster without replication or Keeper:
	// shards of one server each, every node migrated on its own (no ON
	// CLUSTER, which needs Keeper) with plain MergeTree tables, and the
	// Distributed tables over Cluster as in cluster mode. Run Up on every
	// node, those that only route (in no shard of Cluster) included.
	// deploy/shard runs two shards and a router on local endpoints this way.
	PerNode bool
	// Retention is how long data is kept (TTL) and visible. Default 72h;
	// whole seconds.
	Retention time.Duration
	// ReplicationPathPrefix is the ZooKeeper/Keeper path prefix of the
	// Replicated tables in cluster mode. Default "/clickhouse/statustrace".
	ReplicationPathPrefix string
	// AutoStatistics says the server builds column statistics for every
	// column by default (the auto_statistics_types MergeTree setting,
	// ClickHouse 26 and later). The data tables then keep only the minmax
	// ones: the uniq sketches cost up to 256 KiB per column and part (about a
	// sixth of the bytes on disk at a million spans) and no statustrace query
	// needs them. Older servers reject the setting, so Up sets this when
	// system.merge_tree_settings has it; set it yourself to render (Render)
	// for such a server.
	AutoStatistics bool

	// stateRank overrides schema.StateRankExpr (tests: a Go constant a
	// template pulls in must change the checksum).
	stateRank string
	// upTo, when set, is the newest migration this run knows: tables a
	// later migration creates get no retention ALTER (they do not exist).
	upTo uint32
}

// Migration is one schema version.
type Migration struct {
	Version    uint32
	Name       string
	Statements []string // text/template sources, see migrations.go
}

// canonical are the options a checksum renders with: fixed, so that the
// checksum is the same for every deployment, and covering both modes, so
// that whatever a template pulls in (internal/schema constants, engine
// and TTL helpers) is part of it.
var canonical = []Options{
	{Database: schema.DefaultDatabase, AutoStatistics: true},
	{Database: schema.DefaultDatabase, AutoStatistics: true, Cluster: "cluster"},
}

// Checksum identifies what the migration runs: its statements rendered
// (with canonical options, in single-node and cluster mode), their guards
// included. It is recorded when the migration is applied; a released
// migration whose SQL changed, by its template or by a Go constant the
// template uses, is refused.
func (m Migration) Checksum() string { return m.checksum("") }

func (m Migration) checksum(stateRank string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00", m.Version, m.Name)
	for _, opts := range canonical {
		opts.stateRank = stateRank
		o, err := opts.withDefaults()
		if err != nil {
			panic(err) // canonical options are valid
		}
		for _, src := range m.Statements {
			st, err := o.render(src)
			if err != nil {
				// An unrenderable migration fails Up anyway; its checksum
				// still depends on its text.
				fmt.Fprintf(h, "unrenderable\x00%s\x00", src)
				continue
			}
			fmt.Fprintf(h, "%s\x00%s\x00%s\x00", st.SQL, st.SkipIf, st.Each)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Migrations returns the built-in schema history, oldest first.
func Migrations() []Migration {
	out := make([]Migration, len(builtin))
	copy(out, builtin)
	return out
}

// Rendered is a migration with its statements rendered for one Options.
type Rendered struct {
	Migration
	SQL []string
	// SkipIf[i], when set, is a query returning one number n: SQL[i] is
	// skipped when n is not 0 (for a step that cannot be written
	// idempotently, such as EXCHANGE TABLES).
	SkipIf []string
	// Each[i], when set, is a query returning partition IDs: SQL[i] runs
	// once per ID, in place of PartitionPlaceholder.
	Each []string
}

// Statement is one rendered statement with its guard.
type Statement struct {
	SQL, SkipIf, Each string
}

// PartitionPlaceholder stands for the partition ID in a statement run once
// per partition (Rendered.Each).
const PartitionPlaceholder = "{partition_id}"

var (
	identRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	clusterRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	pathRE    = regexp.MustCompile(`^/[A-Za-z0-9_./-]{0,255}$`)
)

// withDefaults fills defaults and validates. Names end up in DDL, which
// cannot take bind parameters, so they are restricted to identifier
// characters (and quoted as well).
func (o Options) withDefaults() (Options, error) {
	if o.Database == "" {
		o.Database = schema.DefaultDatabase
	}
	if o.Retention == 0 {
		o.Retention = schema.DefaultRetentionSeconds * time.Second
	}
	if o.ReplicationPathPrefix == "" {
		o.ReplicationPathPrefix = "/clickhouse/statustrace"
	}
	var errs []error
	if !identRE.MatchString(o.Database) {
		errs = append(errs, fmt.Errorf("database %q: want letters, digits and _ (not starting with a digit)", o.Database))
	}
	if o.Cluster != "" && !clusterRE.MatchString(o.Cluster) {
		errs = append(errs, fmt.Errorf("cluster %q: want letters, digits, _ . and -", o.Cluster))
	}
	if o.PerNode && o.Cluster == "" {
		errs = append(errs, errors.New("per-node mode needs a cluster (for its Distributed tables)"))
	}
	if o.Retention < time.Second || o.Retention%time.Second != 0 {
		errs = append(errs, fmt.Errorf("retention %s: want a positive whole number of seconds", o.Retention))
	}
	if !pathRE.MatchString(o.ReplicationPathPrefix) || strings.Contains(o.ReplicationPathPrefix, "//") {
		errs = append(errs, fmt.Errorf("replication path prefix %q: want an absolute path of letters, digits, _ . - /", o.ReplicationPathPrefix))
	}
	return o, errors.Join(errs...)
}

// Validate reports whether o (with defaults filled) can be rendered.
func (o Options) Validate() error {
	_, err := o.withDefaults()
	return err
}

// retentionSeconds is the retention as whole seconds.
func (o Options) retentionSeconds() int64 { return int64(o.Retention / time.Second) }

// sharded tables are split across shards in cluster mode (a Distributed
// table named as in internal/schema, over name+LocalSuffix). Other names
// (settings, migrations, views) exist once per node.
var sharded = map[string]bool{
	schema.Transitions: true, schema.Events: true, schema.Stats: true,
	schema.StatsV1: true, schema.DurationsV4: true,
}

var known = map[string]bool{
	schema.Transitions: true, schema.Events: true, schema.Stats: true,
	schema.Settings: true, schema.Migrations: true, schema.MVEvents: true, schema.MVStats: true,
	schema.StatsV1: true, schema.MVStatsV1: true, schema.DurationsV4: true, schema.MVDurationsV4: true,
}

func quote(id string) string { return "`" + strings.ReplaceAll(id, "`", "``") + "`" }

// physical returns the table that holds the data of name on this node.
func (o Options) physical(name string) string {
	if o.Cluster != "" && sharded[name] {
		return name + schema.LocalSuffix
	}
	return name
}

func (o Options) qualified(name string) string { return quote(o.Database) + "." + quote(name) }

// qualifiedFor is qualified with defaults applied (tests and tools).
func (o Options) qualifiedFor(name string) string {
	if o.Database == "" {
		o.Database = schema.DefaultDatabase
	}
	return o.qualified(name)
}

func (o Options) onCluster() string {
	if o.Cluster == "" || o.PerNode {
		return ""
	}
	return " ON CLUSTER " + quote(o.Cluster)
}

// engine renders a MergeTree-family engine; in cluster mode its Replicated
// variant with a per-shard path.
func (o Options) engine(family, args, table string, perShard bool) string {
	if o.Cluster == "" || o.PerNode {
		return family + "(" + args + ")"
	}
	path := o.ReplicationPathPrefix + "/" + o.Database + "/"
	if perShard {
		path += "{shard}/"
	}
	path += table
	params := "'" + path + "', '{replica}'"
	if args != "" {
		params += ", " + args
	}
	return "Replicated" + family + "(" + params + ")"
}

func (o Options) ttl(expr string) string {
	return fmt.Sprintf("TTL %s + toIntervalSecond(%d)", expr, o.retentionSeconds())
}

func (o Options) funcs() template.FuncMap {
	check := func(name string) error {
		if !known[name] {
			return fmt.Errorf("unknown table %q (add it to internal/schema)", name)
		}
		return nil
	}
	return template.FuncMap{
		"table": func(name string) (string, error) {
			if err := check(name); err != nil {
				return "", err
			}
			return o.qualified(o.physical(name)), nil
		},
		"name": func(name string) (string, error) {
			if err := check(name); err != nil {
				return "", err
			}
			return o.qualified(name), nil
		},
		// engine and globalEngine need the table name: render sets them per
		// CREATE TABLE statement.
		"engine":       func(string, string) (string, error) { return "", errors.New("engine outside CREATE TABLE") },
		"globalEngine": func(string, string) (string, error) { return "", errors.New("engine outside CREATE TABLE") },
		"distributed": func(name, key string) (string, error) {
			if err := check(name); err != nil {
				return "", err
			}
			if o.Cluster == "" {
				return "", nil
			}
			args := fmt.Sprintf("'%s', '%s', '%s'", o.Cluster, o.Database, o.physical(name))
			if key != "" {
				args += ", " + key
			}
			return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s AS %s ENGINE = Distributed(%s)",
				o.qualified(name), o.onCluster(), o.qualified(o.physical(name)), args), nil
		},
		"ttl": o.ttl,
		"stateRank": func(col string) (string, error) {
			if col != schema.ColToState {
				return "", fmt.Errorf("stateRank %q: migrations rank %s only", col, schema.ColToState)
			}
			return o.stateRankExpr(), nil
		},
		"transitionsColumns": func() string { return transitionsColumns },
		// fragment renders sql/_name.sql with the statement's functions:
		// SQL that two statements of a migration share (pinned by the
		// checksums like the migrations that include it).
		"fragment": func(name string) (string, error) {
			src, err := sqlFS.ReadFile("sql/_" + name + ".sql")
			if err != nil {
				return "", fmt.Errorf("fragment %q: %w", name, err)
			}
			st, err := o.render(string(src))
			if err != nil {
				return "", fmt.Errorf("fragment %q: %w", name, err)
			}
			if st.SkipIf != "" || st.Each != "" {
				return "", fmt.Errorf("fragment %q: guards belong to the statement, not to a fragment", name)
			}
			return st.SQL, nil
		},
		"settings": o.settings,
		// clustered is true in cluster mode (a statement for the
		// Distributed table only).
		"clustered": func() bool { return o.Cluster != "" },
		// tableAs is the physical table of name with a suffix: a table
		// that replaces name (or is being replaced) during a rebuild.
		"tableAs": func(name, suffix string) (string, error) {
			if err := check(name); err != nil {
				return "", err
			}
			return o.qualified(o.physical(name) + suffix), nil
		},
		// physicalName is the physical table's bare name, for a string
		// literal (names are identifier characters only).
		"physicalName": func(name string) (string, error) {
			if err := check(name); err != nil {
				return "", err
			}
			return o.physical(name), nil
		},
		// The guards below render nothing: render records them.
		"skipIfVersioned":  func(string, string) (string, error) { return "", errors.New("guard outside render") },
		"skipUnlessExists": func(string, string) (string, error) { return "", errors.New("guard outside render") },
		"skipIfNotEmpty":   func(string, string) (string, error) { return "", errors.New("guard outside render") },
		"eachPartition":    func(string, string) (string, error) { return "", errors.New("guard outside render") },
	}
}

func (o Options) stateRankExpr() string {
	if o.stateRank != "" {
		return o.stateRank
	}
	return schema.StateRankExpr
}

// lit is a string literal of a name made of identifier characters.
func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "\\'") + "'" }

// guards returns the template functions that record a statement's guard
// (skip conditions, per-partition repetition) into st.
func (o Options) guards(st *Statement) template.FuncMap {
	table := func(name, suffix string) (string, error) {
		if !known[name] {
			return "", fmt.Errorf("unknown table %q (add it to internal/schema)", name)
		}
		return o.physical(name) + suffix, nil
	}
	set := func(dst *string, q string) error {
		if *dst != "" {
			return errors.New("a statement takes one guard of each kind")
		}
		*dst = q
		return nil
	}
	tables := "system.tables WHERE database = " + lit(o.Database) + " AND name = "
	return template.FuncMap{
		// skipIfVersioned: skip when name's engine already has the version column.
		"skipIfVersioned": func(name, version string) (string, error) {
			t, err := table(name, "")
			if err != nil {
				return "", err
			}
			return "", set(&st.SkipIf, "SELECT count() AS n FROM "+tables+lit(t)+" AND engine_full LIKE "+lit("%MergeTree(%"+version+")%"))
		},
		// skipUnlessExists: skip when the table does not exist.
		"skipUnlessExists": func(name, suffix string) (string, error) {
			t, err := table(name, suffix)
			if err != nil {
				return "", err
			}
			return "", set(&st.SkipIf, "SELECT toUInt64(count() = 0) AS n FROM "+tables+lit(t))
		},
		// skipUnlessDefault: skip when the table's column has no DEFAULT
		// expression (any more).
		"skipUnlessDefault": func(name, column string) (string, error) {
			t, err := table(name, "")
			if err != nil {
				return "", err
			}
			return "", set(&st.SkipIf, "SELECT toUInt64(count() = 0) AS n FROM system.columns WHERE database = "+lit(o.Database)+
				" AND table = "+lit(t)+" AND name = "+lit(column)+" AND default_kind = 'DEFAULT'")
		},
		// skipIfNotEmpty: skip when the table holds rows.
		"skipIfNotEmpty": func(name, suffix string) (string, error) {
			t, err := table(name, suffix)
			if err != nil {
				return "", err
			}
			return "", set(&st.SkipIf, "SELECT count() AS n FROM system.parts WHERE database = "+lit(o.Database)+" AND table = "+lit(t)+" AND active AND rows > 0")
		},
		// eachPartition: run once per active partition of the table.
		"eachPartition": func(name, suffix string) (string, error) {
			t, err := table(name, suffix)
			if err != nil {
				return "", err
			}
			return PartitionPlaceholder, set(&st.Each, "SELECT DISTINCT partition_id FROM system.parts WHERE database = "+lit(o.Database)+" AND table = "+lit(t)+" AND active ORDER BY partition_id")
		},
	}
}

// settings renders a data table's SETTINGS clause.
func (o Options) settings(s string) string {
	if o.AutoStatistics {
		s += ", auto_statistics_types = 'minmax'"
	}
	return "SETTINGS " + s
}

// tableOf finds the table a CREATE TABLE statement's template creates, so
// that engine paths name it.
var createTableRE = regexp.MustCompile(`CREATE TABLE IF NOT EXISTS \{\{(?:table|name|tableAs) "([a-z_]+)"(?: "([a-z0-9_]+)")?\}\}`)

func (o Options) render(src string) (Statement, error) {
	var st Statement
	fm := sqltmpl.Funcs()
	for k, f := range o.funcs() {
		fm[k] = f
	}
	for k, f := range o.guards(&st) {
		fm[k] = f
	}
	if m := createTableRE.FindStringSubmatch(src); m != nil {
		tbl := o.physical(m[1]) + m[2]
		fm["engine"] = func(family, args string) string { return o.engine(family, args, tbl, true) }
		fm["globalEngine"] = func(family, args string) string { return o.engine(family, args, tbl, false) }
	}
	t, err := template.New("stmt").Option("missingkey=error").Funcs(fm).Parse(src)
	if err != nil {
		return st, fmt.Errorf("parse statement template: %w", err)
	}
	var b strings.Builder
	data := struct{ DB, DBString, OnCluster string }{quote(o.Database), lit(o.Database), o.onCluster()}
	if err := t.Execute(&b, data); err != nil {
		return st, fmt.Errorf("render statement: %w", err)
	}
	st.SQL = strings.TrimSpace(b.String())
	return st, nil
}

// Render renders every built-in migration for opts, dropping statements that
// render empty (the Distributed tables in single-node mode). It is what Up
// executes, and what a dry run prints.
func Render(opts Options) ([]Rendered, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return o.renderAll(builtin)
}

func (o Options) renderAll(ms []Migration) ([]Rendered, error) {
	out := make([]Rendered, 0, len(ms))
	for i, m := range ms {
		if m.Version != uint32(i+1) {
			return nil, fmt.Errorf("migration %q has version %d, want %d (versions start at 1 without gaps)", m.Name, m.Version, i+1)
		}
		r := Rendered{Migration: m}
		for _, src := range m.Statements {
			st, err := o.render(src)
			if err != nil {
				return nil, fmt.Errorf("migration %d: %w", m.Version, err)
			}
			if st.SQL != "" {
				r.SQL = append(r.SQL, st.SQL)
				r.SkipIf = append(r.SkipIf, st.SkipIf)
				r.Each = append(r.Each, st.Each)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// bootstrapSQL creates the database and the migrations table, the two things
// that must exist before versions can be read.
func (o Options) bootstrapSQL() []string {
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + quote(o.Database) + o.onCluster(),
		"CREATE TABLE IF NOT EXISTS " + o.qualified(schema.Migrations) + o.onCluster() + `
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ` + o.engine("ReplacingMergeTree", "applied_at", schema.Migrations, false) + `
ORDER BY version`,
	}
}

// retentionSQL sets every data table's TTL to the retention in o.
func (o Options) retentionSQL() []string {
	out := make([]string, 0, len(ttlTables))
	for _, t := range ttlTables {
		if v := ttlSince[t.name]; o.upTo != 0 && v > o.upTo {
			continue
		}
		if v := ttlUntil[t.name]; v != 0 && (o.upTo == 0 || o.upTo >= v) {
			continue
		}
		out = append(out, fmt.Sprintf("ALTER TABLE %s%s MODIFY %s",
			o.qualified(o.physical(t.name)), o.onCluster(), o.ttl(t.expr)))
	}
	return out
}
