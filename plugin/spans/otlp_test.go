package spans

import (
	"github.com/statustrace/statustrace/plugin"
	"testing"
	"time"
)

func clearOTLPEnv(t *testing.T) {
	for _, k := range []string{"ENDPOINT", "HEADERS", "INSECURE", "COMPRESSION", "TIMEOUT", "PROTOCOL",
		"CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"} {
		t.Setenv("OTEL_EXPORTER_OTLP_"+k, "")
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_"+k, "")
	}
}

func TestResolveOTLPFromConfigAndEnvironment(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		cfg      map[string]string
		protocol string
		endpoint string
		insecure bool
		header   string // value of "authorization"
		timeout  time.Duration
	}{
		{name: "defaults", protocol: plugin.ProtocolGRPC, endpoint: "localhost:4317", timeout: 10 * time.Second},
		{name: "http defaults", cfg: map[string]string{plugin.KeyProtocol: plugin.ProtocolHTTP},
			protocol: plugin.ProtocolHTTP, endpoint: "http://localhost:4318/v1/traces", insecure: true, timeout: 10 * time.Second},
		{name: "generic env endpoint gets the signal path",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318"},
			protocol: plugin.ProtocolHTTP, endpoint: "https://collector:4318/v1/traces", timeout: 10 * time.Second},
		{name: "signal env endpoint is used as is",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://c:4318/custom/traces"},
			protocol: plugin.ProtocolHTTP, endpoint: "https://c:4318/custom/traces", timeout: 10 * time.Second},
		{name: "grpc url endpoint: http means plaintext",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"},
			protocol: plugin.ProtocolGRPC, endpoint: "collector:4317", insecure: true, timeout: 10 * time.Second},
		{name: "config wins over env",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4317", "OTEL_EXPORTER_OTLP_HEADERS": "authorization=env"},
			cfg:      map[string]string{plugin.KeyEndpoint: "cfg:4317", plugin.KeyInsecure: "false", plugin.KeyHeaders: "authorization=cfg", plugin.KeyTimeout: "3s"},
			protocol: plugin.ProtocolGRPC, endpoint: "cfg:4317", header: "cfg", timeout: 3 * time.Second},
		{name: "env headers are URL-decoded, env timeout is ms",
			env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "authorization=Bearer%20abc", "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
				"OTEL_EXPORTER_OTLP_INSECURE": "true"},
			protocol: plugin.ProtocolGRPC, endpoint: "localhost:4317", insecure: true, header: "Bearer abc", timeout: 2500 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearOTLPEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, err := ParseConfig(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			s, err := resolveOTLP(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if s.protocol != c.protocol || s.endpoint != c.endpoint || s.insecure != c.insecure ||
				s.headers["authorization"] != c.header || s.timeout != c.timeout {
				t.Fatalf("got %+v", s)
			}
		})
	}
}

func TestResolveOTLPErrors(t *testing.T) {
	for name, c := range map[string]struct{ env, cfg map[string]string }{
		"grpc endpoint without port": {cfg: map[string]string{plugin.KeyEndpoint: "collector"}},
		"env protocol":               {env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}},
		"env timeout":                {env: map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}},
		"env compression":            {env: map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}},
		"missing CA file":            {cfg: map[string]string{plugin.KeyCAFile: "/nonexistent/ca.pem"}},
	} {
		t.Run(name, func(t *testing.T) {
			clearOTLPEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, err := ParseConfig(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := resolveOTLP(cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
