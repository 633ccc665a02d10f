package statustraceexporter

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/statustrace/statustrace/exporter/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatalf("unmarshal %s: %v", name, err)
	}
	return cfg.(*Config), confmap.Validate(cfg)
}

func TestLoadDefaultConfig(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database != "statustrace" || cfg.Retention != 72*time.Hour || cfg.MaxFutureSkew != 10*time.Minute || !cfg.CreateSchema || cfg.AsyncInsert ||
		cfg.Compression != "lz4" || cfg.ClusterName != "" {
		t.Errorf("defaults: %+v", cfg)
	}
	if cfg.BackOffConfig.MaxElapsedTime != 0 || !cfg.BackOffConfig.Enabled {
		t.Errorf("retry must be on and never give up: %+v", cfg.BackOffConfig)
	}
	q := cfg.QueueSettings.Get()
	if q == nil || q.Batch.Get() == nil || q.Batch.Get().FlushTimeout > 500*time.Millisecond {
		t.Errorf("queue batching must flush within 500ms for real-time status: %+v", q)
	}
	opt, err := cfg.clickhouseOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opt.Protocol != clickhouse.Native || opt.Compression.Method != clickhouse.CompressionLZ4 || opt.TLS != nil {
		t.Errorf("options: protocol %v compression %v tls %v", opt.Protocol, opt.Compression, opt.TLS)
	}
	if opt.Auth.Database != "" {
		t.Errorf("with create_schema the connection must not require the database to exist, got %q", opt.Auth.Database)
	}
}

func TestLoadFullConfig(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(t, "full")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Username != "statustrace" || string(cfg.Password) != "s3cret-pass" || cfg.Database != "st_prod" ||
		cfg.Retention != 48*time.Hour || cfg.CreateSchema || cfg.ClusterName != "prod" || !cfg.AsyncInsert ||
		cfg.Compression != "zstd" || cfg.Timeout != 20*time.Second || cfg.MaxFutureSkew != 5*time.Minute || cfg.CreateSchemaTimeout != 30*time.Second {
		t.Errorf("full config: %+v", cfg)
	}
	q := cfg.QueueSettings.Get()
	if q == nil || q.StorageID == nil || q.StorageID.String() != "file_storage/statustrace" || q.NumConsumers != 2 {
		t.Errorf("queue: %+v", q)
	}
	opt, err := cfg.clickhouseOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opt.Protocol != clickhouse.HTTP || opt.TLS == nil || !opt.TLS.InsecureSkipVerify {
		t.Errorf("https endpoint: protocol %v tls %+v", opt.Protocol, opt.TLS)
	}
	if opt.Auth.Username != "statustrace" || opt.Auth.Password != "s3cret-pass" || opt.Auth.Database != "st_prod" {
		t.Errorf("auth: %+v", opt.Auth)
	}
	for k, want := range map[string]any{"async_insert": 1, "wait_for_async_insert": 1, "distributed_foreground_insert": 1} {
		if fmt.Sprint(opt.Settings[k]) != fmt.Sprint(want) {
			t.Errorf("setting %s = %v, want %v", k, opt.Settings[k], want)
		}
	}
	if opt.Settings["max_execution_time"] == nil {
		t.Errorf("connection_params not applied: %v", opt.Settings)
	}
	if opt.DialTimeout != 5*time.Second {
		t.Errorf("endpoint DSN parameter not applied: dial timeout %v", opt.DialTimeout)
	}
	// The password never shows in what may be logged or printed.
	if strings.Contains(cfg.redactedEndpoint(), "s3cret") || strings.Contains(fmt.Sprintf("%v %+v", cfg.Password, cfg.Password), "s3cret") {
		t.Error("password leaks into printable config")
	}
	out := confmap.New()
	if err := out.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprint(out.ToStringMap()), "s3cret") {
		t.Error("password leaks into the marshalled config")
	}
}

func TestLoadHTTPConfig(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(t, "http")
	if err != nil {
		t.Fatal(err)
	}
	opt, err := cfg.clickhouseOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opt.Protocol != clickhouse.HTTP || opt.Compression.Method != clickhouse.CompressionGZIP {
		t.Errorf("protocol %v compression %v", opt.Protocol, opt.Compression)
	}
}

func TestInvalidConfigs(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"bad-scheme":      "scheme",
		"bad-database":    "database",
		"bad-retention":   "retention",
		"bad-compression": "needs an http(s) endpoint",
		"no-endpoint":     "endpoint must be set",
		"bad-cluster":     "cluster",
		"bad-skew":        "max_future_skew",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("want an error containing %q, got %v", want, err)
			}
		})
	}
}

func TestEndpointErrorHidesPassword(t *testing.T) {
	t.Parallel()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Endpoint = "tcp://user:hunter2@[::1" // unparsable
	err := cfg.Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("want an error without the password, got %v", err)
	}
}

// A retention longer than ~98 days lets a batch span more daily partitions
// than ClickHouse's default max_partitions_per_insert_block (100): the
// exporter raises the limit, unless connection_params sets it.
func TestMaxPartitionsFollowRetention(t *testing.T) {
	t.Parallel()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Endpoint = "tcp://127.0.0.1:9000"
	opt, err := cfg.clickhouseOptions()
	if err != nil {
		t.Fatal(err)
	}
	if _, set := opt.Settings["max_partitions_per_insert_block"]; set {
		t.Errorf("72h retention: setting %v, want ClickHouse's default", opt.Settings["max_partitions_per_insert_block"])
	}
	cfg.Retention = 365 * 24 * time.Hour
	if opt, err = cfg.clickhouseOptions(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(opt.Settings["max_partitions_per_insert_block"]); got != "367" {
		t.Errorf("365d retention: max_partitions_per_insert_block %s, want 367", got)
	}
	cfg.ConnectionParams = map[string]string{"max_partitions_per_insert_block": "1000"}
	if opt, err = cfg.clickhouseOptions(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(opt.Settings["max_partitions_per_insert_block"]); got != "1000" {
		t.Errorf("connection_params must win: %s", got)
	}
}
