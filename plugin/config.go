package plugin

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config keys of the plugin's configuration map (Sink.Configure): the
// contract owns them, so a host sets them through Config (typed) and the
// plugin parses them with ParseConfig, both from here. Every key is optional; what
// is not set falls back to the standard OTEL_EXPORTER_OTLP_* variables of
// the plugin process (which inherits the scheduler's environment) and then
// to the OTLP defaults.
const (
	KeyProtocol       = "otlp.protocol"       // "grpc" (default) or "http/protobuf"
	KeyEndpoint       = "otlp.endpoint"       // host:port, or a URL (http(s)://host:port[/path])
	KeyHeaders        = "otlp.headers"        // "k1=v1,k2=v2" (e.g. authorization)
	KeyInsecure       = "otlp.insecure"       // "true": plaintext
	KeyCompression    = "otlp.compression"    // "gzip" or "none"
	KeyTimeout        = "otlp.timeout"        // per export, e.g. "10s"; default 10s
	KeyCAFile         = "otlp.tls.ca_file"    // PEM CA bundle for the collector's certificate
	KeyCertFile       = "otlp.tls.cert_file"  // client certificate (mTLS)
	KeyKeyFile        = "otlp.tls.key_file"   // client key (mTLS)
	KeyServiceName    = "service.name"        // resource service.name; else OTEL_SERVICE_NAME, else "statustrace"
	KeyResourceAttrs  = "resource.attributes" // extra resource attributes "k1=v1,k2=v2"
	KeyExportWorkers  = "export.workers"      // batches exported concurrently; default 2
	KeyMaxEventStates = "state.max_events"    // events remembered for state intervals; default 100000
	KeySpoolDir       = "spool.dir"           // folder of the durable spool; default DefaultSpoolDir
	KeySpoolMaxBytes  = "spool.max_bytes"     // bound of the spool on disk, bytes or KiB/MiB/GiB; default 1GiB
	KeyDrainTimeout   = "spool.drain_timeout" // how long Shutdown keeps sending the spool; default 5s
)

// DefaultSpoolDir is relative to the plugin's working directory, which is
// the scheduler's (go-plugin starts the plugin there): the spool lives in
// the scheduler's data folder unless configured elsewhere.
const DefaultSpoolDir = "statustrace-spool"

const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Config is the plugin's configuration, typed. A host renders it with Map;
// the plugin reads the map back with ParseConfig.
type Config struct {
	Protocol       string // empty: from the environment, else grpc
	Endpoint       string
	Headers        map[string]string
	Insecure       *bool
	Compression    string
	Timeout        time.Duration
	CAFile         string
	CertFile       string
	KeyFile        string
	ServiceName    string
	ResourceAttrs  map[string]string
	ExportWorkers  int
	MaxEventStates int
	SpoolDir       string
	SpoolMaxBytes  int64
	DrainTimeout   time.Duration
}

// ParseConfig reads the PluginConfig map. Unknown keys are an error, so that
// a typo does not silently send spans somewhere else.
func ParseConfig(m map[string]string) (Config, error) {
	c := Config{ExportWorkers: 2, MaxEventStates: 100_000, SpoolDir: DefaultSpoolDir, SpoolMaxBytes: 1 << 30, DrainTimeout: 5 * time.Second}
	var errs []error
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(m[k])
		var err error
		switch k {
		case KeyProtocol:
			c.Protocol = v
		case KeyEndpoint:
			c.Endpoint = v
		case KeyHeaders:
			c.Headers, err = ParsePairs(v)
		case KeyInsecure:
			var b bool
			b, err = strconv.ParseBool(v)
			c.Insecure = &b
		case KeyCompression:
			c.Compression = v
		case KeyTimeout:
			c.Timeout, err = time.ParseDuration(v)
		case KeyCAFile:
			c.CAFile = v
		case KeyCertFile:
			c.CertFile = v
		case KeyKeyFile:
			c.KeyFile = v
		case KeyServiceName:
			c.ServiceName = v
		case KeyResourceAttrs:
			c.ResourceAttrs, err = ParsePairs(v)
		case KeyExportWorkers:
			c.ExportWorkers, err = strconv.Atoi(v)
		case KeyMaxEventStates:
			c.MaxEventStates, err = strconv.Atoi(v)
		case KeySpoolDir:
			c.SpoolDir = v
		case KeySpoolMaxBytes:
			c.SpoolMaxBytes, err = parseBytes(v)
		case KeyDrainTimeout:
			c.DrainTimeout, err = time.ParseDuration(v)
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("plugin config %q: %w", k, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// Validate checks the values that ParseConfig cannot check one by one.
func (c Config) Validate() error {
	var errs []error
	switch c.Protocol {
	case "", ProtocolGRPC, ProtocolHTTP:
	default:
		errs = append(errs, fmt.Errorf("plugin config %q: %q is neither %q nor %q", KeyProtocol, c.Protocol, ProtocolGRPC, ProtocolHTTP))
	}
	switch c.Compression {
	case "", "gzip", "none":
	default:
		errs = append(errs, fmt.Errorf("plugin config %q: %q is neither gzip nor none", KeyCompression, c.Compression))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("plugin config %q: negative", KeyTimeout))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, fmt.Errorf("plugin config: %q and %q go together", KeyCertFile, KeyKeyFile))
	}
	if c.ExportWorkers < 1 || c.ExportWorkers > 64 {
		errs = append(errs, fmt.Errorf("plugin config %q: %d not in [1, 64]", KeyExportWorkers, c.ExportWorkers))
	}
	if c.MaxEventStates < 1 {
		errs = append(errs, fmt.Errorf("plugin config %q: %d is not positive", KeyMaxEventStates, c.MaxEventStates))
	}
	if c.SpoolDir == "" {
		errs = append(errs, fmt.Errorf("plugin config %q: empty", KeySpoolDir))
	}
	if c.SpoolMaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("plugin config %q: %d is below 1MiB", KeySpoolMaxBytes, c.SpoolMaxBytes))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("plugin config %q: negative", KeyDrainTimeout))
	}
	return errors.Join(errs...)
}

// Map renders c as the key/value map Sink.Configure takes: only the fields
// that are set, so the plugin's defaults and environment apply to the rest.
// ParseConfig(c.Map()) gives c back, with defaults for the unset fields.
func (c Config) Map() map[string]string {
	m := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set(KeyProtocol, c.Protocol)
	set(KeyEndpoint, c.Endpoint)
	set(KeyHeaders, formatPairs(c.Headers))
	if c.Insecure != nil {
		m[KeyInsecure] = strconv.FormatBool(*c.Insecure)
	}
	set(KeyCompression, c.Compression)
	if c.Timeout != 0 {
		m[KeyTimeout] = c.Timeout.String()
	}
	set(KeyCAFile, c.CAFile)
	set(KeyCertFile, c.CertFile)
	set(KeyKeyFile, c.KeyFile)
	set(KeyServiceName, c.ServiceName)
	set(KeyResourceAttrs, formatPairs(c.ResourceAttrs))
	if c.ExportWorkers != 0 {
		m[KeyExportWorkers] = strconv.Itoa(c.ExportWorkers)
	}
	if c.MaxEventStates != 0 {
		m[KeyMaxEventStates] = strconv.Itoa(c.MaxEventStates)
	}
	set(KeySpoolDir, c.SpoolDir)
	if c.SpoolMaxBytes != 0 {
		m[KeySpoolMaxBytes] = strconv.FormatInt(c.SpoolMaxBytes, 10)
	}
	if c.DrainTimeout != 0 {
		m[KeyDrainTimeout] = c.DrainTimeout.String()
	}
	return m
}

// formatPairs is ParsePairs' inverse, keys sorted.
func formatPairs(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// parseBytes reads a size: a number of bytes, or with a KiB, MiB or GiB
// suffix ("512MiB").
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = strings.TrimSpace(n), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("%q is not a size (bytes, or with KiB, MiB, GiB)", s)
	}
	return n * mult, nil
}

// ParsePairs parses "k1=v1,k2=v2" (the OTEL_EXPORTER_OTLP_HEADERS format;
// values may be URL-encoded there, here they are taken as written).
func ParsePairs(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", part)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}
