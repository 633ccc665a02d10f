// Package config is the scheduler's configuration file: the node, its
// database, the status-trace plugin and the functions it invokes. The file is
// YAML (JSON, being YAML, works too); unknown keys are errors so a typo never
// silently falls back to a default.
package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/plugin"
)

// Database drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Defaults applied by Load (and by ApplyDefaults for configs built in code).
const (
	DefaultListen         = "127.0.0.1:8080"
	DefaultSQLitePath     = "statustrace-scheduler.db"
	DefaultWorkers        = 100
	DefaultJobRetention   = 72 * time.Hour
	DefaultQualifier      = "$LATEST"
	DefaultNamespace      = "default"
	DefaultTimeout        = 30 * time.Second
	DefaultRetries        = 2
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = time.Minute
	DefaultBackoffFactor  = 2.0
	DefaultMaxEventAge    = 6 * time.Hour
	DefaultTerminateGrace = 10 * time.Second
	DefaultMaxPayload     = 6 << 20
	DefaultSettingsPoll   = 2 * time.Second
	DefaultFetchPoll      = time.Second
	DefaultExpiryPoll     = time.Second
	DefaultFetchCooldown  = 10 * time.Millisecond
	MaxRetries            = 100
)

// Config is the whole file.
type Config struct {
	// Node names this scheduler in every transition it reports. Defaults to
	// the host name.
	Node string `yaml:"node"`
	// Tenant is the account the functions belong to.
	Tenant string `yaml:"tenant"`
	// Listen is the address of the HTTP API.
	Listen string `yaml:"listen"`
	// APITokens are the API's bearer tokens, as the statustrace API's
	// token specs: token=tenant or token=tenant:ns1,ns2 (the tenant must be
	// Tenant). SCHEDULER_API_TOKENS (specs separated by ';') and
	// APITokenFile (JSON, as the statustrace API's) add more.
	APITokens    []string `yaml:"api_tokens,omitempty"`
	APITokenFile string   `yaml:"api_token_file,omitempty"`
	// AdminTokens (same specs; SCHEDULER_ADMIN_TOKENS adds more) may also
	// change an account's standing through the API. Optional: without
	// them the standing comes from the config file alone.
	AdminTokens []string `yaml:"admin_tokens,omitempty"`
	// DemoListen, when set, serves the demo functions on this address.
	DemoListen string `yaml:"demo_listen"`
	// Workers is how many invocations one node runs at once.
	Workers int `yaml:"workers"`
	// JobRetention is how long finished jobs stay in the database; a
	// caller-supplied request ID stays unique for at least this long.
	JobRetention Duration `yaml:"job_retention"`
	// MaxPayloadBytes bounds an invocation's body.
	MaxPayloadBytes int64 `yaml:"max_payload_bytes"`
	// SettingsPoll is how often a node re-reads the shared per-function
	// status-trace switches (set through the API on any node).
	SettingsPoll Duration `yaml:"settings_poll"`
	// ExpiryPoll is how often a node looks for waiting events past their
	// max age and ends them EXPIRED (every node looks; one ends each).
	ExpiryPoll Duration `yaml:"expiry_poll"`
	// FetchPoll and FetchCooldown tune how River looks for new jobs.
	FetchPoll     Duration `yaml:"fetch_poll"`
	FetchCooldown Duration `yaml:"fetch_cooldown"`

	// Account is the tenant's standing (arrears, suspended) from the file.
	Account Account `yaml:"account"`

	Database    Database    `yaml:"database"`
	StatusTrace StatusTrace `yaml:"status_trace"`
	Functions   []Function  `yaml:"functions"`
}

// Database is where River keeps its jobs.
type Database struct {
	// Driver is "sqlite" (embedded, one node) or "postgres" (several nodes
	// sharing the work).
	Driver string `yaml:"driver"`
	// DSN is a SQLite file path or URI, or a PostgreSQL connection string.
	DSN string `yaml:"dsn"`
}

// StatusTrace configures the status-trace plugin. With no plugin_path the
// scheduler runs without one and reports nothing.
type StatusTrace struct {
	PluginPath    string            `yaml:"plugin_path"`
	PluginConfig  map[string]string `yaml:"plugin_config"`
	BufferSize    int               `yaml:"buffer_size"`
	BatchSize     int               `yaml:"batch_size"`
	FlushInterval Duration          `yaml:"flush_interval"`
	// SpoolDir is where the plugin keeps what it acknowledged until the
	// collector took it, across restarts (the plugin's spool.dir). Default:
	// statustrace-spool next to the SQLite database, else in the working
	// directory. Schedulers may share it: each process locks its own part.
	SpoolDir string `yaml:"spool_dir"`
}

// SpoolDirName is the default spool folder's name.
const SpoolDirName = "statustrace-spool"

// Function is one invocable function.
type Function struct {
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace"`
	Qualifier string `yaml:"qualifier"`
	// Endpoint receives the payload as a POST with X-Request-Id and
	// traceparent headers; any 2xx answer is success.
	Endpoint string `yaml:"endpoint"`
	// TerminateEndpoint, when set, is told (POST, X-Request-Id) that a
	// graceful terminate began, so the running call can wind down within
	// TerminateGrace.
	TerminateEndpoint string   `yaml:"terminate_endpoint"`
	Timeout           Duration `yaml:"timeout"`
	// Retries is how many times a failed call is tried again (attempts =
	// retries + 1).
	Retries        *int     `yaml:"retries"`
	Backoff        Backoff  `yaml:"backoff"`
	MaxEventAge    Duration `yaml:"max_event_age"`
	TerminateGrace Duration `yaml:"terminate_grace"`
	// QPS limits accepted invocations per second on each node; 0 means no
	// limit. Burst defaults to max(1, ceil(QPS)).
	QPS   float64 `yaml:"qps"`
	Burst int     `yaml:"burst"`
	// StatusTrace switches status recording for new events; default on.
	StatusTrace *bool `yaml:"status_trace"`
}

// Backoff is exponential: Initial * Multiplier^(attempt-1), capped at Max.
type Backoff struct {
	Initial    Duration `yaml:"initial"`
	Max        Duration `yaml:"max"`
	Multiplier float64  `yaml:"multiplier"`
}

// Key is the function's identity within a scheduler.
func (f *Function) Key() string { return f.Namespace + "/" + f.Name }

// MaxAttempts is the River max_attempts for the function's jobs.
func (f *Function) MaxAttempts() int { return *f.Retries + 1 }

// TraceOn reports the configured status-trace switch.
func (f *Function) TraceOn() bool { return f.StatusTrace == nil || *f.StatusTrace }

// Delay is the wait before the attempt after failed attempt n (n ≥ 1).
func (b Backoff) Delay(n int) time.Duration {
	d := float64(b.Initial.D()) * math.Pow(b.Multiplier, float64(max(n-1, 0)))
	if d > float64(b.Max.D()) || math.IsInf(d, 0) || math.IsNaN(d) {
		return b.Max.D()
	}
	return time.Duration(d)
}

// Load reads, defaults and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes, defaults and validates a config document.
func Parse(data []byte) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// ApplyDefaults fills every unset field with its default.
func (c *Config) ApplyDefaults() {
	if c.Node == "" {
		c.Node, _ = os.Hostname()
	}
	if c.Tenant == "" {
		c.Tenant = "default"
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.JobRetention == 0 {
		c.JobRetention = Duration(DefaultJobRetention)
	}
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = DefaultMaxPayload
	}
	if c.SettingsPoll == 0 {
		c.SettingsPoll = Duration(DefaultSettingsPoll)
	}
	if c.ExpiryPoll == 0 {
		c.ExpiryPoll = Duration(DefaultExpiryPoll)
	}
	if c.FetchPoll == 0 {
		c.FetchPoll = Duration(DefaultFetchPoll)
	}
	if c.FetchCooldown == 0 {
		c.FetchCooldown = Duration(DefaultFetchCooldown)
	}
	if c.Account.Standing == "" {
		c.Account.Standing = StandingGood
	}
	if c.Database.Driver == "" {
		c.Database.Driver = DriverSQLite
	}
	if c.Database.Driver == DriverSQLite && c.Database.DSN == "" {
		c.Database.DSN = DefaultSQLitePath
	}
	if c.StatusTrace.SpoolDir == "" && c.StatusTrace.PluginConfig[plugin.KeySpoolDir] == "" {
		c.StatusTrace.SpoolDir = filepath.Join(c.dataDir(), SpoolDirName)
	}
	for i := range c.Functions {
		f := &c.Functions[i]
		if f.Namespace == "" {
			f.Namespace = DefaultNamespace
		}
		if f.Qualifier == "" {
			f.Qualifier = DefaultQualifier
		}
		if f.Timeout == 0 {
			f.Timeout = Duration(DefaultTimeout)
		}
		if f.Retries == nil {
			r := DefaultRetries
			f.Retries = &r
		}
		if f.Backoff.Initial == 0 {
			f.Backoff.Initial = Duration(DefaultBackoffInitial)
		}
		if f.Backoff.Max == 0 {
			f.Backoff.Max = Duration(max(DefaultBackoffMax, f.Backoff.Initial.D()))
		}
		if f.Backoff.Multiplier == 0 {
			f.Backoff.Multiplier = DefaultBackoffFactor
		}
		if f.MaxEventAge == 0 {
			f.MaxEventAge = Duration(DefaultMaxEventAge)
		}
		if f.TerminateGrace == 0 {
			f.TerminateGrace = Duration(DefaultTerminateGrace)
		}
		if f.Burst == 0 && f.QPS > 0 {
			f.Burst = max(1, int(math.Ceil(f.QPS)))
		}
	}
}

// Validate reports every problem at once, each naming its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	checkKey := func(field, v string) {
		if v == "" {
			bad("%s: must not be empty", field)
		} else if len(v) > event.MaxKeyBytes {
			bad("%s: longer than %d bytes", field, event.MaxKeyBytes)
		} else if strings.ContainsAny(v, "/\x00") {
			bad("%s: %q must not contain '/' or NUL", field, v)
		}
	}
	checkKey("node", c.Node)
	checkKey("tenant", c.Tenant)
	if c.Listen == "" {
		bad("listen: must not be empty")
	}
	if c.Workers < 1 || c.Workers > 10000 {
		bad("workers: %d not in [1, 10000]", c.Workers)
	}
	if c.JobRetention.D() < time.Hour {
		bad("job_retention: %s is shorter than 1h", c.JobRetention)
	}
	if c.MaxPayloadBytes < 0 {
		bad("max_payload_bytes: must not be negative")
	}
	if c.SettingsPoll.D() <= 0 || c.FetchPoll.D() <= 0 || c.FetchCooldown.D() <= 0 || c.ExpiryPoll.D() <= 0 {
		bad("settings_poll, expiry_poll, fetch_poll, fetch_cooldown: must be positive")
	}
	c.Account.validate(bad)
	switch c.Database.Driver {
	case DriverSQLite:
	case DriverPostgres:
		if c.Database.DSN == "" {
			bad("database.dsn: required for the postgres driver")
		}
	default:
		bad("database.driver: %q is neither %q nor %q", c.Database.Driver, DriverSQLite, DriverPostgres)
	}
	if c.StatusTrace.BufferSize < 0 || c.StatusTrace.BatchSize < 0 || c.StatusTrace.FlushInterval < 0 {
		bad("status_trace: sizes and flush_interval must not be negative")
	}
	if c.StatusTrace.SpoolDir != "" && c.StatusTrace.PluginConfig[plugin.KeySpoolDir] != "" {
		bad("status_trace: spool_dir and plugin_config[%q] both set; keep one", plugin.KeySpoolDir)
	} else if _, err := plugin.ParseConfig(c.StatusTrace.PluginConfigWithSpool()); err != nil {
		bad("status_trace.plugin_config: %w", err)
	}

	if len(c.Functions) == 0 {
		bad("functions: at least one function is required")
	}
	seen := map[string]int{}
	for i := range c.Functions {
		f := &c.Functions[i]
		p := fmt.Sprintf("functions[%d]", i)
		checkKey(p+".name", f.Name)
		checkKey(p+".namespace", f.Namespace)
		checkKey(p+".qualifier", f.Qualifier)
		if j, dup := seen[f.Key()]; dup {
			bad("%s: %s is already defined by functions[%d]", p, f.Key(), j)
		}
		seen[f.Key()] = i
		if err := checkURL(f.Endpoint); err != nil {
			bad("%s.endpoint: %w", p, err)
		}
		if f.TerminateEndpoint != "" {
			if err := checkURL(f.TerminateEndpoint); err != nil {
				bad("%s.terminate_endpoint: %w", p, err)
			}
		}
		if f.Timeout.D() <= 0 {
			bad("%s.timeout: must be positive", p)
		}
		if f.Retries == nil || *f.Retries < 0 || *f.Retries > MaxRetries {
			bad("%s.retries: must be in [0, %d]", p, MaxRetries)
		}
		if f.Backoff.Initial.D() <= 0 || f.Backoff.Max.D() < f.Backoff.Initial.D() {
			bad("%s.backoff: need 0 < initial <= max", p)
		}
		if f.Backoff.Multiplier < 1 {
			bad("%s.backoff.multiplier: %g is below 1", p, f.Backoff.Multiplier)
		}
		if f.MaxEventAge.D() <= 0 {
			bad("%s.max_event_age: must be positive", p)
		}
		if f.TerminateGrace.D() < 0 {
			bad("%s.terminate_grace: must not be negative", p)
		}
		if f.QPS < 0 || math.IsNaN(f.QPS) || math.IsInf(f.QPS, 0) {
			bad("%s.qps: must be a finite number >= 0", p)
		}
		if f.Burst < 0 {
			bad("%s.burst: must not be negative", p)
		}
	}
	return errors.Join(errs...)
}

// PluginConfigWithSpool is what the plugin gets: plugin_config with spool.dir set
// from spool_dir.
func (s StatusTrace) PluginConfigWithSpool() map[string]string {
	out := make(map[string]string, len(s.PluginConfig)+1)
	for k, v := range s.PluginConfig {
		out[k] = v
	}
	if s.SpoolDir != "" {
		out[plugin.KeySpoolDir] = s.SpoolDir
	}
	return out
}

// dataDir is the folder of the SQLite database file, else ".": where the
// scheduler keeps its state.
func (c *Config) dataDir() string {
	if c.Database.Driver != DriverSQLite {
		return "."
	}
	p := strings.TrimPrefix(c.Database.DSN, "file:")
	p, _, _ = strings.Cut(p, "?")
	if p == "" || strings.HasPrefix(p, ":memory:") {
		return "."
	}
	return filepath.Dir(p)
}

// Function returns the function with the given namespace and name.
func (c *Config) Function(namespace, name string) (*Function, bool) {
	for i := range c.Functions {
		if c.Functions[i].Namespace == namespace && c.Functions[i].Name == name {
			return &c.Functions[i], true
		}
	}
	return nil, false
}

func checkURL(raw string) error {
	if raw == "" {
		return errors.New("must not be empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: missing host", raw)
	}
	return nil
}

// Duration is a time.Duration written as "1.5s", "100ms", "72h" (or a plain
// number of seconds).
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts a Go duration string or a number of seconds.
func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: duration must be a scalar", node.Line)
	}
	if v, err := time.ParseDuration(node.Value); err == nil {
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := node.Decode(&secs); err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 1.5s, 200ms, 72h)", node.Line, node.Value)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// MarshalYAML writes the Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
