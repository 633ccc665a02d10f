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
)

// Options select where and how the schema is created.
type Options struct {
	// Database holds every statustrace table. Default schema.DefaultDatabase.
	Database string
	// Cluster, when set, makes every statement ON CLUSTER, every table a
	// Replicated one and puts Distributed tables (named as in internal/schema)
	// in front of the per-shard tables (named with schema.LocalSuffix).
	Cluster string
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
}

// Migration is one schema version.
type Migration struct {
	Version    uint32
	Name       string
	Statements []string // text/template sources, see migrations.go
}

// Checksum identifies the migration's source text. It is recorded when the
// migration is applied; a released migration whose text changed is refused.
func (m Migration) Checksum() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00", m.Version, m.Name)
	for _, s := range m.Statements {
		h.Write([]byte(s))
		h.Write([]byte{0})
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
}

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
var sharded = map[string]bool{schema.Transitions: true, schema.Events: true, schema.Stats: true}

var known = map[string]bool{
	schema.Transitions: true, schema.Events: true, schema.Stats: true,
	schema.Settings: true, schema.Migrations: true, schema.MVEvents: true, schema.MVStats: true,
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
	if o.Cluster == "" {
		return ""
	}
	return " ON CLUSTER " + quote(o.Cluster)
}

// engine renders a MergeTree-family engine; in cluster mode its Replicated
// variant with a per-shard path.
func (o Options) engine(family, args, table string, perShard bool) string {
	if o.Cluster == "" {
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
		"ttl":       o.ttl,
		"stateRank": func() string { return schema.StateRankExpr },
		"settings":  o.settings,
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
var createTableRE = regexp.MustCompile(`CREATE TABLE IF NOT EXISTS \{\{(?:table|name) "([a-z_]+)"\}\}`)

func (o Options) render(src string) (string, error) {
	fm := o.funcs()
	if m := createTableRE.FindStringSubmatch(src); m != nil {
		tbl := o.physical(m[1])
		fm["engine"] = func(family, args string) string { return o.engine(family, args, tbl, true) }
		fm["globalEngine"] = func(family, args string) string { return o.engine(family, args, tbl, false) }
	}
	t, err := template.New("stmt").Option("missingkey=error").Funcs(fm).Parse(src)
	if err != nil {
		return "", fmt.Errorf("parse statement template: %w", err)
	}
	var b strings.Builder
	data := struct{ DB, OnCluster string }{quote(o.Database), o.onCluster()}
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("render statement: %w", err)
	}
	return strings.TrimSpace(b.String()), nil
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
			sql, err := o.render(src)
			if err != nil {
				return nil, fmt.Errorf("migration %d: %w", m.Version, err)
			}
			if sql != "" {
				r.SQL = append(r.SQL, sql)
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
		out = append(out, fmt.Sprintf("ALTER TABLE %s%s MODIFY %s",
			o.qualified(o.physical(t.name)), o.onCluster(), o.ttl(t.expr)))
	}
	return out
}
