package spans

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/statustrace/statustrace/plugin"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// exporter sends one request synchronously; an error means the spans may
// not have arrived (the batch is not acknowledged and the host re-sends it).
type exporter interface {
	export(ctx context.Context, td ptrace.Traces) error
	shutdown(ctx context.Context) error
}

// otlpSettings is the resolved exporter configuration: PluginConfig first,
// then OTEL_EXPORTER_OTLP_TRACES_*, then OTEL_EXPORTER_OTLP_*, then the
// OTLP defaults, as the OpenTelemetry specification orders them.
type otlpSettings struct {
	protocol    string
	endpoint    string // gRPC: host:port; HTTP: full URL
	insecure    bool
	headers     map[string]string
	compression string
	timeout     time.Duration
	tls         *tls.Config
}

func resolveOTLP(c Config) (otlpSettings, error) {
	var s otlpSettings
	var err error
	if s.protocol, err = protocolOf(c); err != nil {
		return s, err
	}

	if c.Headers != nil {
		s.headers = c.Headers
	} else if h, ok := otlpEnv("HEADERS"); ok {
		if s.headers, err = parseEnvHeaders(h); err != nil {
			return s, fmt.Errorf("OTEL_EXPORTER_OTLP_HEADERS: %w", err)
		}
	}

	s.compression = c.Compression
	if s.compression == "" {
		s.compression, _ = otlpEnv("COMPRESSION")
	}
	switch s.compression {
	case "", "none":
		s.compression = ""
	case "gzip":
	default:
		return s, fmt.Errorf("OTLP compression %q is neither gzip nor none", s.compression)
	}

	s.timeout = c.Timeout
	if s.timeout == 0 {
		if v, ok := otlpEnv("TIMEOUT"); ok {
			ms, err := strconv.Atoi(v)
			if err != nil || ms < 0 {
				return s, fmt.Errorf("OTEL_EXPORTER_OTLP_TIMEOUT %q: not milliseconds", v)
			}
			s.timeout = time.Duration(ms) * time.Millisecond
		}
	}
	if s.timeout == 0 {
		s.timeout = 10 * time.Second
	}

	tc := c
	if tc.CAFile == "" {
		tc.CAFile, _ = otlpEnv("CERTIFICATE")
	}
	if tc.CertFile == "" && tc.KeyFile == "" {
		tc.CertFile, _ = otlpEnv("CLIENT_CERTIFICATE")
		tc.KeyFile, _ = otlpEnv("CLIENT_KEY")
	}
	if s.tls, err = tlsConfigOf(tc); err != nil {
		return s, err
	}

	insecureSet := c.Insecure != nil
	if insecureSet {
		s.insecure = *c.Insecure
	} else if v, ok := otlpEnv("INSECURE"); ok {
		s.insecure, _ = strconv.ParseBool(v)
		insecureSet = true
	}

	// Endpoint. Only the generic OTEL_EXPORTER_OTLP_ENDPOINT gets the
	// "/v1/traces" path appended for HTTP; a signal-specific one is used as is.
	endpoint, asIs := c.Endpoint, true
	if endpoint == "" {
		if v := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
			endpoint = v
		} else if v := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
			endpoint, asIs = v, false
		}
	}
	switch s.protocol {
	case plugin.ProtocolHTTP:
		if endpoint == "" {
			endpoint, asIs = "http://localhost:4318", false
		}
		if !isURL(endpoint) {
			scheme := "https://"
			if s.insecure {
				scheme = "http://"
			}
			endpoint, asIs = scheme+endpoint, false
		}
		u, err := url.Parse(endpoint)
		if err != nil {
			return s, fmt.Errorf("OTLP endpoint %q: %w", endpoint, err)
		}
		if !asIs || u.Path == "" || u.Path == "/" {
			u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
		}
		s.endpoint = u.String()
		s.insecure = u.Scheme == "http"
	default:
		if endpoint == "" {
			endpoint = "localhost:4317"
		}
		if isURL(endpoint) {
			u, err := url.Parse(endpoint)
			if err != nil {
				return s, fmt.Errorf("OTLP endpoint %q: %w", endpoint, err)
			}
			endpoint = u.Host
			if !insecureSet {
				s.insecure = u.Scheme == "http"
			}
		}
		if _, _, err := net.SplitHostPort(endpoint); err != nil {
			return s, fmt.Errorf("OTLP/gRPC endpoint %q: want host:port: %w", endpoint, err)
		}
		s.endpoint = endpoint
	}
	return s, nil
}

// otlpEnv reads OTEL_EXPORTER_OTLP_TRACES_<name>, else OTEL_EXPORTER_OTLP_<name>.
func otlpEnv(name string) (string, bool) {
	if v, ok := os.LookupEnv("OTEL_EXPORTER_OTLP_TRACES_" + name); ok && v != "" {
		return strings.TrimSpace(v), true
	}
	if v, ok := os.LookupEnv("OTEL_EXPORTER_OTLP_" + name); ok && v != "" {
		return strings.TrimSpace(v), true
	}
	return "", false
}

// parseEnvHeaders reads the W3C-baggage-like header list of the spec, whose
// values are URL-encoded.
func parseEnvHeaders(s string) (map[string]string, error) {
	m, err := plugin.ParsePairs(s)
	if err != nil {
		return nil, err
	}
	for k, v := range m {
		if d, err := url.PathUnescape(v); err == nil {
			m[k] = d
		}
	}
	return m, nil
}

// connectBackoff bounds the wait between connection attempts to the
// receiver; with the export retry backoff (deliver) it keeps the time from
// a receiver's return to the first accepted export near a second.
var connectBackoff = backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}

// minConnectTimeout: one connection attempt that gets no answer (a
// black-holed address) gives up after this long and is tried again.
const minConnectTimeout = 5 * time.Second

func newExporter(s otlpSettings) (exporter, error) {
	if s.protocol == plugin.ProtocolHTTP {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: minConnectTimeout, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSClientConfig = s.tls
		tr.MaxIdleConnsPerHost = 16
		return &httpExporter{s: s, client: &http.Client{Transport: tr, Timeout: s.timeout}}, nil
	}
	var creds credentials.TransportCredentials
	switch {
	case s.insecure:
		creds = insecure.NewCredentials()
	case s.tls != nil:
		creds = credentials.NewTLS(s.tls)
	default:
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
		// Bounded reconnect backoff: gRPC's default grows to 2 minutes, so
		// exports resumed only 10+ s after a restarted collector was back.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: connectBackoff, MinConnectTimeout: minConnectTimeout})}
	if s.compression == "gzip" {
		opts = append(opts, grpc.WithDefaultCallOptions(grpc.UseCompressor("gzip")))
	}
	conn, err := grpc.NewClient(s.endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP/gRPC client for %s: %w", s.endpoint, err)
	}
	var md metadata.MD
	if len(s.headers) > 0 {
		md = metadata.New(s.headers)
	}
	return &grpcExporter{s: s, conn: conn, client: ptraceotlp.NewGRPCClient(conn), md: md}, nil
}

type grpcExporter struct {
	s      otlpSettings
	conn   *grpc.ClientConn
	client ptraceotlp.GRPCClient
	md     metadata.MD
}

func (e *grpcExporter) export(ctx context.Context, td ptrace.Traces) error {
	ctx, cancel := context.WithTimeout(ctx, e.s.timeout)
	defer cancel()
	if e.md != nil {
		ctx = metadata.NewOutgoingContext(ctx, e.md)
	}
	resp, err := e.client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	if err != nil {
		return fmt.Errorf("OTLP/gRPC export to %s: %w", e.s.endpoint, err)
	}
	return partialSuccess(resp)
}

func (e *grpcExporter) shutdown(context.Context) error { return e.conn.Close() }

type httpExporter struct {
	s      otlpSettings
	client *http.Client
}

func (e *httpExporter) export(ctx context.Context, td ptrace.Traces) error {
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return fmt.Errorf("marshal OTLP request: %w", err)
	}
	if e.s.compression == "gzip" {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		if err := zw.Close(); err != nil {
			return fmt.Errorf("gzip OTLP request: %w", err)
		}
		body = buf.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.s.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("OTLP/HTTP request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.s.compression == "gzip" {
		req.Header.Set("Content-Encoding", "gzip")
	}
	for k, v := range e.s.headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("OTLP/HTTP export to %s: %w", e.s.endpoint, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return &httpStatusError{code: resp.StatusCode, msg: fmt.Sprintf("OTLP/HTTP export to %s: %s: %.200s", e.s.endpoint, resp.Status, data)}
	}
	out := ptraceotlp.NewExportResponse()
	if len(data) > 0 && resp.Header.Get("Content-Type") == "application/x-protobuf" {
		if err := out.UnmarshalProto(data); err == nil {
			return partialSuccess(out)
		}
	}
	return nil
}

func (e *httpExporter) shutdown(context.Context) error {
	e.client.CloseIdleConnections()
	return nil
}

type httpStatusError struct {
	code int
	msg  string
}

func (e *httpStatusError) Error() string { return e.msg }

// permanent reports whether sending the same request again cannot succeed:
// the receiver refused it as malformed or too large (OTLP: gRPC
// INVALID_ARGUMENT, RESOURCE_EXHAUSTED without retry info; HTTP 400, 413).
// Everything else, authentication and "not found" included, is retried: an
// operator can fix those, and the spool keeps the spans meanwhile.
func permanent(err error) bool {
	var he *httpStatusError
	if errors.As(err, &he) {
		return he.code == http.StatusBadRequest || he.code == http.StatusRequestEntityTooLarge
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.InvalidArgument:
		return true
	case codes.ResourceExhausted:
		for _, d := range st.Details() {
			if _, retry := d.(*errdetails.RetryInfo); retry {
				return false
			}
		}
		return true
	}
	return false
}

// partialSuccess: the receiver accepted the request but refused some spans
// as invalid. Re-sending cannot change that, so it is not an export error;
// it is logged by the caller through the returned error type.
func partialSuccess(resp ptraceotlp.ExportResponse) error {
	if n := resp.PartialSuccess().RejectedSpans(); n > 0 {
		return &rejectedError{n: n, msg: resp.PartialSuccess().ErrorMessage()}
	}
	return nil
}

type rejectedError struct {
	n   int64
	msg string
}

func (e *rejectedError) Error() string {
	return fmt.Sprintf("OTLP receiver rejected %d spans: %s", e.n, e.msg)
}
