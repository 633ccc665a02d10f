// Package spans is the plugin side: it turns status transitions into
// OpenTelemetry spans and exports them over OTLP (gRPC or HTTP). See
// plugin/README.md for the span shape and the acknowledgement guarantee.
package spans

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	hclog "github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"

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
	exporter exporter
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
	if s.exporter != nil && maps.Equal(s.cfg, m) {
		return nil
	}
	settings, err := resolveOTLP(cfg)
	if err != nil {
		return err
	}
	res, err := buildResource(ctx, cfg)
	if err != nil {
		return err
	}
	exp, err := newExporter(settings)
	if err != nil {
		return err
	}
	if s.exporter != nil {
		if err := s.stopLocked(ctx); err != nil {
			s.logger.Warn("replacing exporter", "error", err)
		}
	}
	s.b = newBuilder(res, cfg.MaxEventStates)
	s.exporter = exp
	s.slots = make(chan struct{}, cfg.ExportWorkers)
	s.cfg = m
	s.logger.Info("configured", "protocol", settings.protocol, "endpoint", settings.endpoint, "workers", cfg.ExportWorkers)
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
	td, spans := s.b.newBatch(len(batch))
	for i := range batch {
		if err := Validate(&batch[i]); err != nil {
			rejected++
			s.logger.Warn("dropping invalid transition", "error", err)
			continue
		}
		s.b.build(spans, &batch[i])
	}
	exp, slots := s.exporter, s.slots
	s.inflight.Add(1)
	s.mu.Unlock()

	if spans.Len() == 0 {
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
		err := exp.export(ctx, td)
		<-slots
		var partial *rejectedError
		if errors.As(err, &partial) {
			// Re-sending cannot fix spans the receiver refused as invalid.
			s.logger.Warn("OTLP receiver refused spans", "error", err)
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("export %d spans: %w", spans.Len(), err)
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
	if err := s.exporter.shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut exporter down: %w", err))
	}
	s.exporter, s.b = nil, nil
	return errors.Join(errs...)
}

// buildResource describes the emitting service with the OTel SDK's resource
// detection. Later sources win: default name, the environment
// (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME), then explicit config.
func buildResource(ctx context.Context, cfg Config) (pcommon.Resource, error) {
	r, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "statustrace")),
		resource.WithFromEnv(),
		resource.WithAttributes(resourceAttrs(cfg)...),
	)
	if err != nil && r == nil {
		return pcommon.Resource{}, fmt.Errorf("build resource: %w", err)
	}
	out := pcommon.NewResource()
	for _, kv := range r.Attributes() {
		switch kv.Value.Type() {
		case attribute.BOOL:
			out.Attributes().PutBool(string(kv.Key), kv.Value.AsBool())
		case attribute.INT64:
			out.Attributes().PutInt(string(kv.Key), kv.Value.AsInt64())
		case attribute.FLOAT64:
			out.Attributes().PutDouble(string(kv.Key), kv.Value.AsFloat64())
		default:
			out.Attributes().PutStr(string(kv.Key), kv.Value.Emit())
		}
	}
	return out, nil
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
