package spans

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/statustrace/statustrace/plugin"
)

// Config is the plugin's configuration; the contract (package plugin) owns
// its keys, parsing and defaults.
type Config = plugin.Config

// ParseConfig reads the host's configuration map (see plugin.ParseConfig).
func ParseConfig(m map[string]string) (Config, error) { return plugin.ParseConfig(m) }

// protocol resolves the OTLP protocol the way the OTel specification says:
// config, then OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL.
func protocolOf(c Config) (string, error) {
	p := c.Protocol
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	}
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch p {
	case "", plugin.ProtocolGRPC:
		return plugin.ProtocolGRPC, nil
	case plugin.ProtocolHTTP:
		return plugin.ProtocolHTTP, nil
	default:
		return "", fmt.Errorf("OTLP protocol %q is not supported (use %q or %q)", p, plugin.ProtocolGRPC, plugin.ProtocolHTTP)
	}
}

// tlsConfig returns nil when no TLS file is configured (the exporter then
// uses the environment or the system roots).
func tlsConfigOf(c Config) (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", plugin.KeyCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s %s: no PEM certificate", plugin.KeyCAFile, c.CAFile)
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
