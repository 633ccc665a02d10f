package statustraceexporter

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/statustrace/statustrace/exporter/migrate"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/internal/timewindow"
)

// Config is the statustrace exporter's configuration. README.md documents
// every option.
type Config struct {
	exporterhelper.TimeoutConfig `mapstructure:",squash"`
	BackOffConfig                configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
	QueueSettings                configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`

	// Endpoint is the ClickHouse address as a URL: tcp://host:9000 or
	// clickhouse://host:9000 for the native protocol, http://host:8123 or
	// https://host:8443 for HTTP. Query parameters are clickhouse-go DSN
	// options (dial_timeout, ...).
	Endpoint string `mapstructure:"endpoint"`
	// Username and Password authenticate; they override any in Endpoint.
	// The password is never logged.
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`
	// Database holds the statustrace tables. Default "statustrace".
	Database string `mapstructure:"database"`
	// TLS configures TLS; it is used for https endpoints, with secure=true,
	// or when any TLS file, server name or insecure_skip_verify is set.
	TLS configtls.ClientConfig `mapstructure:"tls"`
	// ConnectionParams are extra DSN parameters, merged into Endpoint's query.
	ConnectionParams map[string]string `mapstructure:"connection_params"`
	// Retention is how long transitions are kept (TTL) and visible. Default 72h.
	Retention time.Duration `mapstructure:"retention"`
	// MaxFutureSkew is how far ahead of this collector's clock a transition
	// may be stamped: one later than that is a broken clock, dropped as
	// bad_timestamp instead of leading newest-first lists and escaping the
	// retention. Default 10m, at most 7 days.
	MaxFutureSkew time.Duration `mapstructure:"max_future_skew"`
	// CreateSchema runs the versioned migrations on start, in the
	// background: the collector serves OTLP into the queue meanwhile.
	// Default true.
	CreateSchema bool `mapstructure:"create_schema"`
	// CreateSchemaTimeout bounds one migration attempt (a hanging
	// ClickHouse must not hold the schema back forever: the attempt is
	// abandoned and retried). Default 2m.
	CreateSchemaTimeout time.Duration `mapstructure:"create_schema_timeout"`
	// ClusterName, when set, creates the schema ON CLUSTER with Replicated
	// tables behind Distributed ones, and inserts synchronously through them.
	ClusterName string `mapstructure:"cluster_name"`
	// AsyncInsert turns on ClickHouse async inserts (always waiting for the
	// flush, so an acknowledged batch is stored). Default false: the sending
	// queue already batches.
	AsyncInsert bool `mapstructure:"async_insert"`
	// Compression of inserted data: lz4 (default), zstd, none; over HTTP also
	// gzip, deflate, br.
	Compression string `mapstructure:"compression"`
}

var (
	errNoEndpoint = errors.New("endpoint must be set")
	protocols     = map[string]clickhouse.Protocol{"tcp": clickhouse.Native, "clickhouse": clickhouse.Native, "http": clickhouse.HTTP, "https": clickhouse.HTTP}
	compressions  = map[string]clickhouse.CompressionMethod{
		"none": clickhouse.CompressionNone, "lz4": clickhouse.CompressionLZ4, "zstd": clickhouse.CompressionZSTD,
		"gzip": clickhouse.CompressionGZIP, "deflate": clickhouse.CompressionDeflate, "br": clickhouse.CompressionBrotli,
	}
)

// Validate checks the configuration without connecting.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Endpoint == "" {
		errs = append(errs, errNoEndpoint)
	} else if _, err := cfg.clickhouseOptions(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.migrateOptions().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.window().Validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.CreateSchemaTimeout < 0 {
		errs = append(errs, fmt.Errorf("create_schema_timeout %s: want a positive duration", cfg.CreateSchemaTimeout))
	}
	return errors.Join(errs...)
}

// window is what the exporter admits: the retention and the tolerated skew.
func (cfg *Config) window() timewindow.Window {
	return timewindow.Window{Retention: cfg.Retention, MaxSkew: cfg.MaxFutureSkew}
}

// maxPartitionsPerInsert is how many daily partitions one batch can span
// once the window has been applied: ClickHouse refuses a block with more
// than max_partitions_per_insert_block (100) partitions, so a retention
// over ~98 days raises the limit instead of failing every wide batch.
func (cfg *Config) maxPartitionsPerInsert() int {
	const day = 24 * time.Hour
	return int((cfg.Retention+cfg.MaxFutureSkew+day-1)/day) + 1
}

func (cfg *Config) database() string {
	if cfg.Database == "" {
		return schema.DefaultDatabase
	}
	return cfg.Database
}

func (cfg *Config) migrateOptions() migrate.Options {
	return migrate.Options{Database: cfg.database(), Cluster: cfg.ClusterName, Retention: cfg.Retention}
}

func (cfg *Config) compression() string {
	if cfg.Compression == "" {
		return "lz4"
	}
	return cfg.Compression
}

// clickhouseOptions turns the configuration into clickhouse-go options. Its
// errors never contain the password.
func (cfg *Config) clickhouseOptions() (*clickhouse.Options, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, errors.New("endpoint is not a URL") // url errors quote the input, which may hold a password
	}
	proto, ok := protocols[u.Scheme]
	if !ok {
		return nil, fmt.Errorf("endpoint scheme %q: want tcp, clickhouse, http or https", u.Scheme)
	}
	comp, ok := compressions[cfg.compression()]
	if !ok {
		return nil, fmt.Errorf("compression %q: want lz4, zstd, none, gzip, deflate or br", cfg.Compression)
	}
	if proto == clickhouse.Native && comp >= clickhouse.CompressionGZIP {
		return nil, fmt.Errorf("compression %q needs an http(s) endpoint", cfg.Compression)
	}
	q := u.Query()
	for k, v := range cfg.ConnectionParams {
		q.Set(k, v)
	}
	if u.Scheme == "https" {
		q.Set("secure", "true")
	}
	u.RawQuery = q.Encode()
	if cfg.Username != "" {
		u.User = url.UserPassword(cfg.Username, string(cfg.Password))
	}
	opt, err := clickhouse.ParseDSN(u.String())
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	opt.Compression = &clickhouse.Compression{Method: comp}
	if cfg.CreateSchema {
		// The database may not exist yet: connect to the server's default
		// one; every statement names the database explicitly anyway.
		opt.Auth.Database = ""
	} else if opt.Auth.Database == "" {
		opt.Auth.Database = cfg.database()
	}
	if cfg.tlsConfigured() || opt.TLS != nil {
		tlsCfg, err := cfg.TLS.LoadTLSConfig(context.Background())
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		if tlsCfg == nil { // tls.insecure: true and an https endpoint
			return nil, errors.New("tls.insecure is set but the endpoint asks for TLS")
		}
		if opt.TLS != nil && opt.TLS.InsecureSkipVerify {
			tlsCfg.InsecureSkipVerify = true
		}
		opt.TLS = tlsCfg
	}
	if opt.Settings == nil {
		opt.Settings = clickhouse.Settings{}
	}
	// Insert-side work that buys nothing here: every reader of the
	// Replacing/Aggregating tables already collapses duplicates (FINAL or
	// GROUP BY), so collapsing them again inside each inserted block is
	// wasted, and the two views of transitions are independent, so they can
	// be fed side by side. Measured on native chDB: about a fifth less
	// engine time per 10,000-row insert. connection_params can override both.
	for name, value := range map[string]any{"optimize_on_insert": 0, "parallel_view_processing": 1} {
		if _, set := opt.Settings[name]; !set {
			opt.Settings[name] = value
		}
	}
	if cfg.AsyncInsert {
		opt.Settings["async_insert"] = 1
		opt.Settings["wait_for_async_insert"] = 1 // acknowledged means stored
	}
	if cfg.ClusterName != "" {
		// Through a Distributed table, acknowledged means on the shards.
		opt.Settings["distributed_foreground_insert"] = 1
	}
	if _, set := opt.Settings["max_partitions_per_insert_block"]; !set && cfg.maxPartitionsPerInsert() > 100 {
		opt.Settings["max_partitions_per_insert_block"] = cfg.maxPartitionsPerInsert()
	}
	if q := cfg.QueueSettings.Get(); q != nil && q.NumConsumers > 0 && opt.MaxOpenConns == 0 {
		opt.MaxOpenConns = q.NumConsumers + 1 // one more for schema work
	}
	return opt, nil
}

func (cfg *Config) tlsConfigured() bool {
	t := cfg.TLS
	return t.CAFile != "" || t.CAPem != "" || t.CertFile != "" || t.CertPem != "" || t.KeyFile != "" || t.KeyPem != "" ||
		t.ServerName != "" || t.InsecureSkipVerify
}

// redactedEndpoint is the endpoint without credentials, for logs.
func (cfg *Config) redactedEndpoint() string {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return "(unparsable endpoint)"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}

// insertSQL is the INSERT the exporter prepares for each batch.
func insertSQL(database string, columns []string) string {
	return "INSERT INTO " + quoteIdent(database) + "." + quoteIdent(schema.Transitions) +
		" (" + strings.Join(columns, ", ") + ")"
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
