package host

import (
	"errors"
	"fmt"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/metric"

	"github.com/statustrace/statustrace/plugin"
)

// Config says which plugin binary to launch and how the Reporter buffers.
// Zero values take the defaults below.
type Config struct {
	PluginPath string // path of the statustrace-plugin binary
	// Plugin configures the plugin process, typed (the contract's keys,
	// rendered with plugin.Config.Map).
	Plugin plugin.Config
	// PluginConfig is the same as a raw key/value map, for settings read
	// from a config file; a key may be set in only one of the two.
	PluginConfig  map[string]string
	BufferSize    int                  // bounded buffer of transitions; default 65536
	BatchSize     int                  // transitions per batch; default 512
	FlushInterval time.Duration        // longest a transition waits for its batch to fill; default 100ms
	Logger        hclog.Logger         // optional; plugin stderr is forwarded here too
	MeterProvider metric.MeterProvider // optional; drop counters, queue depth, restarts, sent/acked

	// MaxInflightBatches bounds the batches sent but not yet acknowledged
	// (kept for re-sending); default 16. Memory is bounded by BufferSize +
	// MaxInflightBatches × BatchSize transitions.
	MaxInflightBatches int
	// AckTimeout: a plugin that acknowledges nothing for this long while
	// batches wait is restarted; default 30s.
	AckTimeout time.Duration
	// MaxBackoff caps the wait between plugin restarts and between re-sends
	// of a batch the plugin could not export; default 5s.
	MaxBackoff time.Duration
	// StartTimeout bounds one launch of the plugin process; default 10s.
	StartTimeout time.Duration
}

const (
	DefaultBufferSize    = 65536
	DefaultBatchSize     = 512
	DefaultFlushInterval = 100 * time.Millisecond
)

func (c Config) withDefaults() Config {
	if c.BufferSize == 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.MaxInflightBatches == 0 {
		c.MaxInflightBatches = 16
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 30 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "statustrace", Level: hclog.Warn})
	}
	return c
}

// Validate checks a Config after defaults were applied.
func (c Config) Validate() error {
	var errs []error
	if c.PluginPath == "" {
		errs = append(errs, errors.New("PluginPath is empty"))
	}
	if c.BufferSize < 1 || c.BufferSize > 1<<24 {
		errs = append(errs, fmt.Errorf("BufferSize %d not in [1, %d]", c.BufferSize, 1<<24))
	}
	if c.BatchSize < 1 || c.BatchSize > 1<<16 {
		errs = append(errs, fmt.Errorf("BatchSize %d not in [1, %d]", c.BatchSize, 1<<16))
	}
	if c.FlushInterval < 0 {
		errs = append(errs, errors.New("FlushInterval is negative"))
	}
	if c.MaxInflightBatches < 1 {
		errs = append(errs, fmt.Errorf("MaxInflightBatches %d is not positive", c.MaxInflightBatches))
	}
	if c.AckTimeout < 0 || c.MaxBackoff < 0 || c.StartTimeout < 0 {
		errs = append(errs, errors.New("negative AckTimeout, MaxBackoff or StartTimeout"))
	}
	if m, err := c.pluginMap(); err != nil {
		errs = append(errs, err)
	} else if _, err := plugin.ParseConfig(m); err != nil {
		// Checked here too, so a typo fails Start before a process is launched.
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// pluginMap is what the plugin is configured with: Plugin rendered, plus
// PluginConfig.
func (c Config) pluginMap() (map[string]string, error) {
	m := c.Plugin.Map()
	var errs []error
	for k, v := range c.PluginConfig {
		if _, dup := m[k]; dup {
			errs = append(errs, fmt.Errorf("plugin config %q set both in Plugin and in PluginConfig", k))
		}
		m[k] = v
	}
	return m, errors.Join(errs...)
}
