// Package stack runs the whole statustrace pipeline on one machine as real
// processes from built binaries: the collector (collector/config.yaml with
// a generated environment), the scheduler with the statustrace plugin (a
// generated config file), and the statustrace API server when the binary
// exists. Every process listens on free loopback ports, runs in a process
// group of its own, logs to a file in the work directory, and is stopped
// with SIGTERM, then SIGKILL, so nothing is left running.
//
// The demo (cmd/statustrace-demo), the end-to-end test and the freshness
// benchmark (testkit/e2e) use it.
package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/statustrace/statustrace/internal/freeport"
	"github.com/statustrace/statustrace/plugin"
	"github.com/statustrace/statustrace/scheduler/config"
)

// DemoBase in a function's endpoint stands for the base URL of the demo
// functions the scheduler serves (demo_listen), whose port Start picks:
// "{{demo}}/flaky?failures=1".
const DemoBase = "{{demo}}"

// Options say what to run.
type Options struct {
	Root string   // module root: collector/config.yaml is read from there
	Bin  Binaries // the executables
	// WorkDir receives the generated configs, the logs (collector.log,
	// scheduler.log, api.log), the scheduler's SQLite database and the
	// collector's persistent queue.
	WorkDir  string
	DSN      string // ClickHouse, clickhouse-go DSN syntax
	Database string // the statustrace database (created by the collector's exporter)
	// CollectorDSN is the ClickHouse the collector writes to, when it is
	// not DSN: the same server reached another way, e.g. through a fault
	// proxy (testkit/faultproxy) that the chaos test freezes and cuts while
	// the API keeps reading DSN directly. Empty: DSN.
	CollectorDSN string

	// CollectorConfig defaults to Root/collector/config.yaml: the shipped
	// settings, batching included.
	CollectorConfig string
	// Scheduler is the scheduler's config: functions, workers, ... Start
	// sets listen, demo_listen, the SQLite database in WorkDir and the
	// plugin (path, OTLP endpoint); Node and Tenant default to "node-1"
	// and "demo"; function endpoints may start with DemoBase.
	Scheduler config.Config
	// NoAPI skips the statustrace API server even if the binary exists.
	NoAPI bool
	// APIToken is the API's bearer token for the scheduler's tenant
	// (generated when empty; at least 16 characters).
	APIToken string
	// SchedulerToken is the scheduler API's bearer token (generated when
	// empty); the statustrace API calls the scheduler with it.
	SchedulerToken string
	// SchedulerAdminToken is the scheduler API's admin token (generated
	// when empty): it may also change an account's standing.
	SchedulerAdminToken string
	// APIArgs are extra arguments of `statustrace serve` (e.g. --trace-url).
	APIArgs []string

	// Logf receives progress lines; nil: silent.
	Logf func(format string, args ...any)
	// StartTimeout bounds each process's start (until healthy); default 2m
	// (the exporter creates the schema on a possibly slow engine).
	StartTimeout time.Duration
}

// Stack is the running pipeline.
type Stack struct {
	opts Options

	SchedulerURL     string // scheduler API, http://127.0.0.1:port
	DemoURL          string // demo functions
	OTLPGRPC         string // collector OTLP/gRPC, 127.0.0.1:port
	OTLPHTTP         string
	CollectorHealth  string // health_check URL
	CollectorMetrics string // the collector's own Prometheus metrics
	APIURL           string // statustrace API; empty without one
	APIToken         string
	SchedulerToken   string // the scheduler API's bearer token
	// SchedulerAdminToken may also change an account's standing.
	SchedulerAdminToken string
	SchedulerConfig     string // path of the generated scheduler config
	// SpoolDir is the plugin's spool folder (status_trace.spool_dir; in
	// WorkDir unless the scheduler config names one): what the plugin
	// acknowledged and has not exported yet waits there across restarts.
	SpoolDir string
	// CollectorQueueDir holds the collector's persistent sending queues
	// (file_storage), kept across collector restarts.
	CollectorQueueDir string

	Collector *Process
	Scheduler *Process
	API       *Process
}

// Start runs collector, API and scheduler, in that order, each until it is
// healthy. On error it stops whatever it started.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.StartTimeout == 0 {
		o.StartTimeout = 2 * time.Minute
	}
	if o.CollectorConfig == "" {
		o.CollectorConfig = filepath.Join(o.Root, "collector", "config.yaml")
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	collectorDSN := o.CollectorDSN
	if collectorDSN == "" {
		collectorDSN = o.DSN
	}
	chEnv, err := ExporterEnv(collectorDSN)
	if err != nil {
		return nil, err
	}
	ports, err := freeport.Ports(7)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	s := &Stack{
		opts:                o,
		OTLPGRPC:            addr(0),
		OTLPHTTP:            addr(1),
		CollectorHealth:     "http://" + addr(2) + "/",
		CollectorMetrics:    fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[3]),
		SchedulerURL:        "http://" + addr(4),
		DemoURL:             "http://" + addr(5),
		SchedulerToken:      o.SchedulerToken,
		SchedulerAdminToken: o.SchedulerAdminToken,

		CollectorQueueDir: filepath.Join(o.WorkDir, "collector-queue"),
	}
	if s.SchedulerToken == "" {
		s.SchedulerToken = randomToken()
	}
	if s.SchedulerAdminToken == "" {
		s.SchedulerAdminToken = randomToken()
	}

	// Collector.
	env := append(chEnv,
		"STATUSTRACE_DATABASE="+o.Database,
		"STATUSTRACE_QUEUE_DIR="+s.CollectorQueueDir,
		"OTLP_GRPC_ENDPOINT="+s.OTLPGRPC,
		"OTLP_HTTP_ENDPOINT="+s.OTLPHTTP,
		"HEALTH_ENDPOINT="+addr(2),
		"METRICS_HOST=127.0.0.1",
		fmt.Sprintf("METRICS_PORT=%d", ports[3]),
	)
	o.Logf("starting the collector (OTLP %s, ClickHouse database %s)", s.OTLPGRPC, o.Database)
	s.Collector, err = startProcess("collector", o.Bin.Collector, []string{"--config", o.CollectorConfig},
		env, o.WorkDir, filepath.Join(o.WorkDir, "collector.log"))
	if err != nil {
		return nil, err
	}
	if err := s.waitHealthy(ctx, s.Collector, s.CollectorHealth); err != nil {
		return nil, s.failStart(err)
	}

	// API server.
	if o.Bin.Statustrace != "" && !o.NoAPI {
		s.APIURL = "http://" + addr(6)
		s.APIToken = o.APIToken
		if s.APIToken == "" {
			s.APIToken = randomToken()
		}
		o.Logf("starting the statustrace API (%s)", s.APIURL)
		s.API, err = startAPI(o, addr(6), s.APIToken, schedulerTenant(o.Scheduler), s.SchedulerURL, s.SchedulerToken)
		if err != nil {
			return nil, s.failStart(err)
		}
		if err := s.waitHealthy(ctx, s.API, s.APIURL+"/healthz"); err != nil {
			return nil, s.failStart(err)
		}
	}

	// Scheduler with the plugin.
	cfgPath, err := s.writeSchedulerConfig(addr(4), addr(5))
	if err != nil {
		return nil, s.failStart(err)
	}
	s.SchedulerConfig = cfgPath
	o.Logf("starting the scheduler with the statustrace plugin (%s)", s.SchedulerURL)
	s.Scheduler, err = startProcess("scheduler", o.Bin.Scheduler,
		[]string{"-config", cfgPath, "-log-level", "info", "-shutdown-timeout", "5s"},
		nil, o.WorkDir, filepath.Join(o.WorkDir, "scheduler.log"))
	if err != nil {
		return nil, s.failStart(err)
	}
	if err := s.waitHealthy(ctx, s.Scheduler, s.SchedulerURL+"/healthz"); err != nil {
		return nil, s.failStart(err)
	}
	return s, nil
}

func (s *Stack) writeSchedulerConfig(listen, demoListen string) (string, error) {
	c := s.opts.Scheduler
	if c.Node == "" {
		c.Node = "node-1"
	}
	c.Tenant = schedulerTenant(c)
	c.APITokens = append(append([]string{}, c.APITokens...), s.SchedulerToken+"="+c.Tenant)
	c.AdminTokens = append(append([]string{}, c.AdminTokens...), s.SchedulerAdminToken+"="+c.Tenant)
	c.Listen = listen
	c.DemoListen = demoListen
	c.Database = config.Database{Driver: config.DriverSQLite, DSN: filepath.Join(s.opts.WorkDir, "scheduler.db")}
	c.StatusTrace.PluginPath = s.opts.Bin.Plugin
	if c.StatusTrace.SpoolDir == "" && c.StatusTrace.PluginConfig[plugin.KeySpoolDir] == "" {
		c.StatusTrace.SpoolDir = filepath.Join(s.opts.WorkDir, config.SpoolDirName)
	}
	s.SpoolDir = c.StatusTrace.SpoolDir
	if s.SpoolDir == "" {
		s.SpoolDir = c.StatusTrace.PluginConfig[plugin.KeySpoolDir]
	}
	insecure := true
	pc := plugin.Config{Endpoint: s.OTLPGRPC, Insecure: &insecure, ServiceName: "scheduler"}.Map()
	for k, v := range s.opts.Scheduler.StatusTrace.PluginConfig {
		pc[k] = v
	}
	c.StatusTrace.PluginConfig = pc
	c.Functions = append([]config.Function(nil), c.Functions...)
	for i := range c.Functions {
		f := &c.Functions[i]
		f.Endpoint = strings.ReplaceAll(f.Endpoint, DemoBase, s.DemoURL)
		f.TerminateEndpoint = strings.ReplaceAll(f.TerminateEndpoint, DemoBase, s.DemoURL)
	}
	data, err := yaml.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("scheduler config: %w", err)
	}
	// Validate as the scheduler will, so a bad config fails here clearly.
	if _, err := config.Parse(data); err != nil {
		return "", fmt.Errorf("scheduler config: %w", err)
	}
	path := filepath.Join(s.opts.WorkDir, "scheduler.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("scheduler config: %w", err)
	}
	return path, nil
}

// schedulerTenant is the tenant of the scheduler's functions (and of the
// API token).
func schedulerTenant(c config.Config) string {
	if c.Tenant == "" {
		return "demo"
	}
	return c.Tenant
}

// waitHealthy polls url until it answers 200, the process exits, ctx ends
// or the start timeout passes.
func (s *Stack) waitHealthy(ctx context.Context, p *Process, url string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.Done():
			_, err := p.Exited()
			return fmt.Errorf("%s exited while starting (%v); last lines of %s:\n%s", p.Name, err, p.LogPath, Tail(p.LogPath, 20))
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy at %s: %w; last lines of %s:\n%s", p.Name, url, context.Cause(ctx), p.LogPath, Tail(p.LogPath, 20))
		case <-tick.C:
		}
	}
}

func (s *Stack) failStart(err error) error {
	if stopErr := s.Stop(); stopErr != nil {
		return errors.Join(err, stopErr)
	}
	return err
}

// Stop stops the scheduler first (it flushes its plugin into the
// collector), then the API, then the collector, each with SIGTERM and,
// after a grace period, SIGKILL. Safe to call more than once.
func (s *Stack) Stop() error {
	var errs []error
	for _, st := range []struct {
		p     *Process
		grace time.Duration
	}{{s.Scheduler, 20 * time.Second}, {s.API, 10 * time.Second}, {s.Collector, 20 * time.Second}} {
		if st.p == nil {
			continue
		}
		if err := st.p.Stop(st.grace); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Processes lists the running parts, for a status line or a test.
func (s *Stack) Processes() []*Process {
	var ps []*Process
	for _, p := range []*Process{s.Collector, s.API, s.Scheduler} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Tail returns the last n lines of a file (for error messages).
func Tail(path string, n int) string { return TailFunc(path, n, nil) }

// TailFunc is Tail over the lines keep accepts (all when keep is nil): the
// collector's debug exporter logs every batch, and in a failed test's
// output those lines hide the warnings that say what went wrong.
func TailFunc(path string, n int, keep func(line string) bool) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if keep != nil {
		lines = slices.DeleteFunc(lines, func(l string) bool { return !keep(l) })
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CollectorQueues returns the collector's sending-queue sizes per exporter
// (otelcol_exporter_queue_size), to see whether ClickHouse keeps up.
func (s *Stack) CollectorQueues(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.CollectorMetrics, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("collector metrics: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "otelcol_exporter_queue_size{") {
			continue
		}
		i := strings.Index(line, `exporter="`)
		if i < 0 {
			continue
		}
		name := line[i+len(`exporter="`):]
		name = name[:strings.IndexByte(name, '"')]
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}
