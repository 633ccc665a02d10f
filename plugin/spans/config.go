package spans

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config keys of the host's PluginConfig map. Every key is optional; what
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

// Config is the parsed PluginConfig.
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
			c.Headers, err = parsePairs(v)
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
			c.ResourceAttrs, err = parsePairs(v)
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

// protocol resolves the OTLP protocol the way the OTel specification says:
// config, then OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL.
func (c Config) protocol() (string, error) {
	p := c.Protocol
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	}
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch p {
	case "", ProtocolGRPC:
		return ProtocolGRPC, nil
	case ProtocolHTTP:
		return ProtocolHTTP, nil
	default:
		return "", fmt.Errorf("OTLP protocol %q is not supported (use %q or %q)", p, ProtocolGRPC, ProtocolHTTP)
	}
}

// tlsConfig returns nil when no TLS file is configured (the exporter then
// uses the environment or the system roots).
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", KeyCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s %s: no PEM certificate", KeyCAFile, c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
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

// parsePairs parses "k1=v1,k2=v2" (the OTEL_EXPORTER_OTLP_HEADERS format;
// values may be URL-encoded there, here they are taken as written).
func parsePairs(s string) (map[string]string, error) {
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
