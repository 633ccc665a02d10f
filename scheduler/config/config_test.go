package config

import (
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statustrace/statustrace/plugin"
)

func TestLoadExample(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "example.yaml"))
	require.NoError(t, err)

	assert.Equal(t, "node-1", cfg.Node)
	assert.Equal(t, "acme", cfg.Tenant)
	assert.Equal(t, DriverSQLite, cfg.Database.Driver)
	assert.Equal(t, 200*time.Millisecond, cfg.StatusTrace.FlushInterval.D())
	assert.Equal(t, "127.0.0.1:4317", cfg.StatusTrace.PluginConfig[plugin.KeyEndpoint])
	assert.Equal(t, "statustrace-spool", cfg.StatusTrace.PluginConfigWithSpool()[plugin.KeySpoolDir])
	require.Len(t, cfg.Functions, 2)

	hello, ok := cfg.Function("demo", "hello")
	require.True(t, ok)
	assert.Equal(t, 3, hello.MaxAttempts())
	assert.Equal(t, 100, hello.Burst, "burst defaults to ceil(qps)")
	assert.True(t, hello.TraceOn())
	assert.Equal(t, time.Hour, hello.MaxEventAge.D())

	long, ok := cfg.Function("demo", "long-job")
	require.True(t, ok)
	assert.Equal(t, 1, long.MaxAttempts())
	assert.Equal(t, DefaultQualifier, long.Qualifier)
	assert.Equal(t, DefaultMaxEventAge, long.MaxEventAge.D())
	assert.Equal(t, 5*time.Second, long.TerminateGrace.D())
	assert.Zero(t, long.QPS, "no QPS limit unless configured")
}

// The plugin's spool lives with the scheduler's data unless configured.
func TestSpoolDirDefault(t *testing.T) {
	for dsn, want := range map[string]string{
		"/var/lib/sched/s.db":        "/var/lib/sched/statustrace-spool",
		"file:/data/s.db?_pragma=x":  "/data/statustrace-spool",
		"s.db":                       "statustrace-spool",
		":memory:":                   "statustrace-spool",
		"file::memory:?cache=shared": "statustrace-spool",
	} {
		cfg, err := Parse([]byte("node: n\ndatabase: {dsn: '" + dsn + "'}\nfunctions: [{name: f, endpoint: 'http://h/x'}]"))
		require.NoError(t, err)
		assert.Equal(t, want, cfg.StatusTrace.SpoolDir, dsn)
		assert.Equal(t, want, cfg.StatusTrace.PluginConfigWithSpool()["spool.dir"], dsn)
	}
	cfg, err := Parse([]byte("node: n\ndatabase: {driver: postgres, dsn: 'postgres://h/db'}\nfunctions: [{name: f, endpoint: 'http://h/x'}]"))
	require.NoError(t, err)
	assert.Equal(t, "statustrace-spool", cfg.StatusTrace.SpoolDir)
	// Set in plugin_config: used as it is.
	cfg, err = Parse([]byte("node: n\nstatus_trace: {plugin_config: {spool.dir: /x}}\nfunctions: [{name: f, endpoint: 'http://h/x'}]"))
	require.NoError(t, err)
	assert.Equal(t, "/x", cfg.StatusTrace.PluginConfigWithSpool()["spool.dir"])
	_, err = Parse([]byte("node: n\nstatus_trace: {spool_dir: /y, plugin_config: {spool.dir: /x}}\nfunctions: [{name: f, endpoint: 'http://h/x'}]"))
	assert.ErrorContains(t, err, "keep one")
}

func TestJSONIsAccepted(t *testing.T) {
	cfg, err := Parse([]byte(`{"node":"n","functions":[{"name":"f","endpoint":"http://127.0.0.1:1/x","timeout":"1.5s","retries":0,"status_trace":false}]}`))
	require.NoError(t, err)
	f := cfg.Functions[0]
	assert.Equal(t, 1500*time.Millisecond, f.Timeout.D())
	assert.Equal(t, 1, f.MaxAttempts())
	assert.False(t, f.TraceOn())
	assert.Equal(t, DefaultNamespace, f.Namespace)
}

func TestDurationAsSeconds(t *testing.T) {
	cfg, err := Parse([]byte("node: n\nfunctions: [{name: f, endpoint: 'http://h/x', timeout: 2.5}]"))
	require.NoError(t, err)
	assert.Equal(t, 2500*time.Millisecond, cfg.Functions[0].Timeout.D())
}

func TestValidateNamesEveryProblem(t *testing.T) {
	doc := `
node: n
workers: -1
database: {driver: mysql}
functions:
  - name: f
    endpoint: ftp://host/x
    retries: 1000
    backoff: {initial: 2s, max: 1s, multiplier: 0.5}
    qps: -3
  - name: f
    endpoint: http://h/x
  - name: ""
    endpoint: http://h/y
`
	_, err := Parse([]byte(doc))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"workers", "database.driver", "functions[0].endpoint", "functions[0].retries",
		"functions[0].backoff", "functions[0].backoff.multiplier", "functions[0].qps",
		"functions[1]: default/f is already defined", "functions[2].name",
	} {
		assert.Contains(t, msg, want)
	}
}

func TestUnknownKeyIsAnError(t *testing.T) {
	_, err := Parse([]byte("node: n\nfunctons: []\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "functons")
}

func TestBadDuration(t *testing.T) {
	_, err := Parse([]byte("node: n\nfunctions: [{name: f, endpoint: 'http://h/x', timeout: soon}]"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"soon" is not a duration`)
}

func TestPostgresNeedsDSN(t *testing.T) {
	_, err := Parse([]byte("node: n\ndatabase: {driver: postgres}\nfunctions: [{name: f, endpoint: 'http://h/x'}]"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "database.dsn")
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: Duration(time.Second), Max: Duration(5 * time.Second), Multiplier: 2}
	assert.Equal(t, time.Second, b.Delay(1))
	assert.Equal(t, 2*time.Second, b.Delay(2))
	assert.Equal(t, 4*time.Second, b.Delay(3))
	assert.Equal(t, 5*time.Second, b.Delay(4))
	assert.Equal(t, 5*time.Second, b.Delay(10000), "huge exponents cap at max")
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestAccountStanding(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "example.yaml"))
	require.NoError(t, err)
	assert.Equal(t, StandingGood, cfg.Account.Standing)
	assert.Equal(t, StandingArrears, cfg.Account.Namespaces["trial"])

	cfg, err = Parse([]byte("node: n\nfunctions: [{name: f, endpoint: 'http://h/x'}]"))
	require.NoError(t, err)
	assert.Equal(t, StandingGood, cfg.Account.Standing, "good unless configured")

	_, err = Parse([]byte("node: n\naccount: {standing: broke, namespaces: {x: late}}\nfunctions: [{name: f, endpoint: 'http://h/x'}]"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "account.standing")
	assert.Contains(t, err.Error(), "account.namespaces[x]")

	assert.Equal(t, StandingSuspended, Worse(StandingArrears, StandingSuspended))
	assert.Equal(t, StandingArrears, Worse(StandingArrears, StandingGood))
	assert.Equal(t, StandingGood, Worse("", ""))
}

// The plugin's configuration is checked when the scheduler's is loaded,
// with the contract's parser: a key the plugin does not know fails Load,
// not the plugin's start later.
func TestPluginConfigCheckedAtLoad(t *testing.T) {
	t.Parallel()
	cfg, err := Load(filepath.Join("testdata", "example.yaml"))
	require.NoError(t, err)
	_, err = plugin.ParseConfig(cfg.StatusTrace.PluginConfigWithSpool())
	require.NoError(t, err, "the example's plugin_config")

	cfg.StatusTrace.PluginConfig["endpoint"] = "127.0.0.1:4317" // the example's old mistake
	err = cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"endpoint": unknown key`)
}
