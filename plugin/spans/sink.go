// Package spans is the plugin side: it turns status transitions into
// OpenTelemetry spans and exports them over OTLP (gRPC or HTTP). See
// plugin/README.md for the span shape and the acknowledgement guarantee.
package spans

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/credentials"

	"github.com/statustrace/statustrace/plugin"
	"github.com/statustrace/statustrace/plugin/event"
)

var errNotConfigured = errors.New("statustrace plugin: not configured")

// Sink implements plugin.Sink. Every batch is built into spans in stream
// order and exported synchronously by one of a bounded number of workers;
// the batch is acknowledged only when that export succeeded. Nothing is
// queued behind the host's back, so a crash loses nothing acknowledged.
type Sink struct {
	logger hclog.Logger

	mu       sync.Mutex // guards everything below and the builder
	cfg      map[string]string
	b        *builder
	tp       *sdktrace.TracerProvider
	exporter sdktrace.SpanExporter
	slots    chan struct{} // one per concurrent export: the bounded export queue
	inflight sync.WaitGroup
	closed   bool
}

var _ plugin.Sink = (*Sink)(nil)

// NewSink returns an unconfigured Sink; the host configures it.
func NewSink(logger hclog.Logger) *Sink {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Sink{logger: logger}
}

// Configure builds the exporter and the span factory. Configuring again with
// a different map replaces them after the exports in flight finished.
func (s *Sink) Configure(ctx context.Context, m map[string]string) error {
	cfg, err := ParseConfig(m)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("statustrace plugin: shut down")
	}
	if s.exporter != nil && equalMaps(s.cfg, m) {
		return nil
	}
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return err
	}
	// Later sources win: default name, environment, then explicit config.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "statustrace")),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
		resource.WithTelemetrySDK(),
		resource.WithAttributes(resourceAttrs(cfg)...),
	)
	if err != nil && res == nil {
		return fmt.Errorf("build resource: %w", err)
	}
	if s.exporter != nil {
		if err := s.stopLocked(ctx); err != nil {
			s.logger.Warn("replacing exporter", "error", err)
		}
	}
	s.b, s.tp = newBuilder(res, cfg.MaxEventStates)
	s.exporter = exp
	s.slots = make(chan struct{}, cfg.ExportWorkers)
	s.cfg = m
	s.logger.Info("configured", "service", cfg.ServiceName, "workers", cfg.ExportWorkers)
	return nil
}

// Submit builds the batch's spans and exports them in the background; it
// blocks while every export worker is busy, which back-pressures the stream.
func (s *Sink) Submit(ctx context.Context, batch []event.Transition, done func(rejected int, err error)) {
	s.mu.Lock()
	if s.exporter == nil || s.closed {
		s.mu.Unlock()
		done(0, errNotConfigured)
		return
	}
	rejected := 0
	for i := range batch {
		if err := Validate(&batch[i]); err != nil {
			rejected++
			s.logger.Warn("dropping invalid transition", "error", err)
			continue
		}
		s.b.build(ctx, &batch[i])
	}
	spans := s.b.collect.take()
	exp, slots := s.exporter, s.slots
	s.inflight.Add(1)
	s.mu.Unlock()

	if len(spans) == 0 {
		s.inflight.Done()
		done(rejected, nil)
		return
	}
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		s.inflight.Done()
		done(rejected, ctx.Err())
		return
	}
	go func() {
		defer s.inflight.Done()
		err := exp.ExportSpans(ctx, spans)
		<-slots
		if err != nil {
			err = fmt.Errorf("export %d spans: %w", len(spans), err)
		}
		done(rejected, err)
	}()
}

// Validate checks a transition without exporting it.
func (s *Sink) Validate(t *event.Transition) error { return Validate(t) }

// Shutdown waits for the exports in flight and stops the exporter.
func (s *Sink) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.exporter == nil {
		return nil
	}
	return s.stopLocked(ctx)
}

func (s *Sink) stopLocked(ctx context.Context) error {
	waited := make(chan struct{})
	go func() { s.inflight.Wait(); close(waited) }()
	var errs []error
	select {
	case <-waited:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("wait for exports in flight: %w", ctx.Err()))
	}
	if err := s.exporter.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut exporter down: %w", err))
	}
	if err := s.tp.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut tracer provider down: %w", err))
	}
	s.exporter, s.tp, s.b = nil, nil, nil
	return errors.Join(errs...)
}

func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	proto, err := cfg.protocol()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	insecure := cfg.Insecure != nil && *cfg.Insecure
	switch proto {
	case ProtocolHTTP:
		var opts []otlptracehttp.Option
		if cfg.Endpoint != "" {
			if isURL(cfg.Endpoint) {
				opts = append(opts, otlptracehttp.WithEndpointURL(cfg.Endpoint))
			} else {
				opts = append(opts, otlptracehttp.WithEndpoint(cfg.Endpoint))
			}
		}
		if insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if tlsCfg != nil {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(tlsCfg))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
		}
		switch cfg.Compression {
		case "gzip":
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		case "none":
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.NoCompression))
		}
		if cfg.Timeout > 0 {
			opts = append(opts, otlptracehttp.WithTimeout(cfg.Timeout))
		}
		if cfg.RetryMax != nil {
			opts = append(opts, otlptracehttp.WithRetry(httpRetry(*cfg.RetryMax)))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP/HTTP exporter: %w", err)
		}
		return exp, nil
	default:
		var opts []otlptracegrpc.Option
		if cfg.Endpoint != "" {
			if isURL(cfg.Endpoint) {
				opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
			} else {
				opts = append(opts, otlptracegrpc.WithEndpoint(cfg.Endpoint))
			}
		}
		if insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		if tlsCfg != nil {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(cfg.Headers))
		}
		if cfg.Compression != "" {
			opts = append(opts, otlptracegrpc.WithCompressor(cfg.Compression))
		}
		if cfg.Timeout > 0 {
			opts = append(opts, otlptracegrpc.WithTimeout(cfg.Timeout))
		}
		if cfg.RetryMax != nil {
			opts = append(opts, otlptracegrpc.WithRetry(grpcRetry(*cfg.RetryMax)))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP/gRPC exporter: %w", err)
		}
		return exp, nil
	}
}

func grpcRetry(max time.Duration) otlptracegrpc.RetryConfig {
	return otlptracegrpc.RetryConfig{Enabled: max > 0, InitialInterval: 100 * time.Millisecond, MaxInterval: 2 * time.Second, MaxElapsedTime: max}
}

func httpRetry(max time.Duration) otlptracehttp.RetryConfig {
	return otlptracehttp.RetryConfig{Enabled: max > 0, InitialInterval: 100 * time.Millisecond, MaxInterval: 2 * time.Second, MaxElapsedTime: max}
}

func resourceAttrs(cfg Config) []attribute.KeyValue {
	var attrs []attribute.KeyValue
	for k, v := range cfg.ResourceAttrs {
		attrs = append(attrs, attribute.String(k, v))
	}
	if cfg.ServiceName != "" {
		attrs = append(attrs, attribute.String("service.name", cfg.ServiceName))
	}
	return attrs
}

func isURL(s string) bool {
	return len(s) > 7 && (s[:7] == "http://" || (len(s) > 8 && s[:8] == "https://"))
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
