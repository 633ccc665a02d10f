// Package spans is the plugin side: it turns status transitions into
// OpenTelemetry spans and exports them over OTLP (gRPC or HTTP). See
// plugin/README.md for the span shape and the delivery guarantee.
package spans

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/plugin"
	"github.com/statustrace/statustrace/plugin/spool"
)

var errNotConfigured = errors.New("statustrace plugin: not configured")

// Sink implements plugin.Sink. Submit validates a batch, computes its span
// starts in stream order, and appends it to the durable spool; the batch is
// acknowledged once it is fsynced (group commit). Export workers read the
// spool in order, build the spans and export them, retrying until the
// receiver takes them; only then is the record forgotten. Records still in
// the spool when the process stops (or dies) are sent by the next process
// that opens the spool folder.
type Sink struct {
	logger hclog.Logger

	mu     sync.Mutex // guards everything below
	cfg    map[string]string
	track  *tracker
	p      *pipeline
	closed bool

	n       counters
	cur     atomic.Pointer[pipeline] // s.p, for Stats without the lock (Shutdown holds it while draining)
	fullLog rateLog                  // these two would flood the log
	failLog rateLog
}

// counters survive reconfiguration; they are the plugin.Stats.
type counters struct {
	spooled, exported, replayed                     atomic.Uint64
	droppedFull, droppedCorrupt, droppedRefused     atomic.Uint64
	refusedSpans, exportFailures, corruptOfOldSpool atomic.Uint64
	spoolBytesAtStop                                atomic.Int64 // spool size when the last pipeline stopped
}

var _ plugin.Sink = (*Sink)(nil)

// NewSink returns an unconfigured Sink; the host configures it.
func NewSink(logger hclog.Logger) *Sink {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Sink{logger: logger}
}

// Configure opens the spool and starts the export workers. Configuring
// again with a different map stops the current pipeline (its spool stays on
// disk and is read again by the new one) and starts a new one.
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
	if s.p != nil && maps.Equal(s.cfg, m) {
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
	if s.p != nil {
		old := s.p
		s.p = nil
		if err := s.stopPipeline(ctx, old, false); err != nil {
			s.logger.Warn("replacing the span pipeline", "error", err)
		}
	}
	p, err := s.startPipeline(cfg, settings, res)
	if err != nil {
		return err
	}
	if s.track == nil || s.track.states.max != cfg.MaxEventStates {
		s.track = newTracker(cfg.MaxEventStates)
	}
	s.p, s.cfg = p, m
	s.cur.Store(p)
	s.logger.Info("configured", "protocol", settings.protocol, "endpoint", settings.endpoint, "workers", cfg.ExportWorkers,
		"spool", p.spool.Dir(), "spool_max_bytes", cfg.SpoolMaxBytes)
	return nil
}

// Submit validates the batch, computes its span starts and appends it to
// the spool; done runs once the record is durable. A batch that does not
// fit in a full spool is acknowledged and counted as dropped (the spool
// keeps what it has, as the collector's persistent queue does).
func (s *Sink) Submit(_ context.Context, batch []event.Transition, done func(rejected int, err error)) {
	s.mu.Lock()
	if s.p == nil || s.closed {
		s.mu.Unlock()
		done(0, errNotConfigured)
		return
	}
	rejected := 0
	// A fresh slice: the spool hands it to an export worker as it is.
	st := make([]staged, 0, len(batch))
	for i := range batch {
		if err := Validate(&batch[i]); err != nil {
			rejected++
			s.logger.Warn("dropping invalid transition", "error", err)
			continue
		}
		start, eventStart := s.track.track(&batch[i])
		st = append(st, staged{t: batch[i], start: start, eventStart: eventStart})
	}
	n := len(st)
	var payload []byte
	if n > 0 {
		payload = encodeRecord(nil, st)
	}
	p := s.p
	s.mu.Unlock()

	if n == 0 {
		done(rejected, nil)
		return
	}
	err := p.spool.Append(payload, n, st, func(err error) {
		if err == nil {
			s.n.spooled.Add(uint64(n))
		}
		done(rejected, err)
	})
	switch {
	case errors.Is(err, spool.ErrFull):
		s.n.droppedFull.Add(uint64(n))
		s.fullLog.log(s.logger, "spool full: dropping new transitions (counted in statustrace.reporter.spool.dropped{reason=\"spool_full\"})",
			"transitions", n, "dropped_so_far", s.n.droppedFull.Load(), "spool_bytes", p.spool.Stats().Bytes)
		done(rejected, nil)
	case err != nil:
		done(rejected, fmt.Errorf("spool: %w", err))
	}
}

// Validate checks a transition without exporting it.
func (s *Sink) Validate(t *event.Transition) error { return Validate(t) }

// Stats returns the counters of this process.
func (s *Sink) Stats() plugin.Stats {
	p := s.cur.Load()
	st := plugin.Stats{
		Spooled: s.n.spooled.Load(), Exported: s.n.exported.Load(), Replayed: s.n.replayed.Load(),
		DroppedSpoolFull: s.n.droppedFull.Load(), DroppedCorrupt: s.n.droppedCorrupt.Load() + s.n.corruptOfOldSpool.Load(),
		DroppedRefused: s.n.droppedRefused.Load(), RefusedSpans: s.n.refusedSpans.Load(), ExportFailures: s.n.exportFailures.Load(),
	}
	if p != nil {
		ss := p.spool.Stats()
		st.DroppedCorrupt += ss.CorruptCount
		st.SpoolBytes = uint64(ss.Bytes)
	} else {
		st.SpoolBytes = uint64(s.n.spoolBytesAtStop.Load())
	}
	return st
}

// Shutdown keeps exporting the spool until it is empty, an export fails
// (the receiver is away: the rest waits for the next start), the drain
// timeout passes or ctx is about to end; then it stops the workers and
// closes the spool.
func (s *Sink) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.p == nil {
		return nil
	}
	p := s.p
	s.p = nil
	return s.stopPipeline(ctx, p, true)
}

// pipeline is one configuration's spool, exporter and export workers.
type pipeline struct {
	spool        *spool.Spool
	exp          exporter
	res          pcommon.Resource
	drainTimeout time.Duration
	cancel       context.CancelFunc
	workers      sync.WaitGroup // this pipeline's only: a timed-out stop never reuses it
	failures     atomic.Uint64  // failed export attempts
}

func (s *Sink) startPipeline(cfg Config, settings otlpSettings, res pcommon.Resource) (*pipeline, error) {
	sp, err := spool.Open(spool.Options{Dir: cfg.SpoolDir, MaxBytes: cfg.SpoolMaxBytes,
		SegmentBytes: min(spool.DefaultSegmentBytes, cfg.SpoolMaxBytes/8), Logger: s.logger.Named("spool")})
	if err != nil {
		return nil, fmt.Errorf("plugin config %q: %w", plugin.KeySpoolDir, err)
	}
	exp, err := newExporter(settings)
	if err != nil {
		_ = sp.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeline{spool: sp, exp: exp, res: res, drainTimeout: cfg.DrainTimeout, cancel: cancel}
	for range cfg.ExportWorkers {
		p.workers.Add(1)
		go s.work(ctx, p)
	}
	return p, nil
}

// stopPipeline stops p's workers (after draining, if asked), its exporter
// and its spool. Waiting for a hung export ends with ctx; the spool is
// closed anyway (what that export held is sent again by the next process).
func (s *Sink) stopPipeline(ctx context.Context, p *pipeline, drain bool) error {
	if drain {
		s.drain(ctx, p)
	}
	p.cancel()
	var errs []error
	waited := make(chan struct{})
	go func() { p.workers.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("wait for exports in flight: %w", ctx.Err()))
	}
	if err := p.exp.shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut exporter down: %w", err))
	}
	if err := p.spool.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close spool: %w", err))
	}
	ss := p.spool.Stats()
	s.n.spoolBytesAtStop.Store(ss.Bytes)
	s.cur.CompareAndSwap(p, nil) // before adding: a reader may see too little for a moment, never too much
	s.n.corruptOfOldSpool.Add(ss.CorruptCount)
	return errors.Join(errs...)
}

// drain waits while the workers empty the spool, within the drain timeout
// and a margin before ctx's deadline (so that Shutdown answers in time).
func (s *Sink) drain(ctx context.Context, p *pipeline) {
	deadline := time.Now().Add(p.drainTimeout)
	if d, ok := ctx.Deadline(); ok {
		deadline = minTime(deadline, d.Add(-max(time.Until(d)/5, 50*time.Millisecond)))
	}
	failures := p.failures.Load()
	for time.Now().Before(deadline) && !p.spool.Empty() {
		if p.failures.Load() != failures {
			s.logger.Info("the OTLP receiver is not taking spans; the rest of the spool is sent at the next start", "spool_bytes", p.spool.Stats().Bytes)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// work is one export worker: it takes records from the spool in order and
// forgets each once its spans were delivered.
func (s *Sink) work(ctx context.Context, p *pipeline) {
	defer p.workers.Done()
	b := newBuilder(p.res)
	for {
		rec, err := p.spool.Next(ctx)
		if err != nil {
			return // closed or cancelled
		}
		ts, ok := rec.Value.([]staged) // this process's own record, not read back
		if !ok {
			ts, err = decodeRecord(rec.Payload)
		}
		if err != nil {
			// The frame's checksum held, so this is a bug or a format change: never retry it.
			s.n.droppedCorrupt.Add(uint64(rec.Count))
			s.logger.Error("dropping an unreadable spool record", "transitions", rec.Count, "error", err)
			p.spool.Done(rec)
			continue
		}
		if rec.Replayed {
			s.n.replayed.Add(uint64(len(ts)))
		}
		if !s.deliver(ctx, p, b, ts) {
			return // stopping: the record stays in the spool
		}
		p.spool.Done(rec)
	}
}

// Export retry backoff: short and bounded, so that exports resume within
// about a second of the receiver coming back (the gRPC connection's own
// backoff is bounded the same way, see newExporter).
const (
	retryBase = 50 * time.Millisecond
	retryMax  = 250 * time.Millisecond
)

// deliver exports the spans of ts, retrying transient failures until ctx
// ends (false). A request the receiver refuses as malformed or too large is
// split in halves, so that only the transitions it refuses on their own
// are dropped and counted.
func (s *Sink) deliver(ctx context.Context, p *pipeline, b *builder, ts []staged) bool {
	td, spans := b.newBatch(len(ts))
	for i := range ts {
		b.emit(spans, &ts[i])
	}
	for attempt := 0; ; attempt++ {
		err := p.exp.export(ctx, td)
		var partial *rejectedError
		switch {
		case err == nil:
			s.n.exported.Add(uint64(len(ts)))
			return true
		case errors.As(err, &partial):
			// Re-sending cannot fix spans the receiver refused as invalid.
			s.n.exported.Add(uint64(len(ts)))
			s.n.refusedSpans.Add(uint64(partial.n))
			s.logger.Warn("OTLP receiver refused spans", "error", err)
			return true
		case ctx.Err() != nil:
			return false
		case permanent(err):
			if len(ts) > 1 {
				h := len(ts) / 2
				return s.deliver(ctx, p, b, ts[:h]) && s.deliver(ctx, p, b, ts[h:])
			}
			s.n.droppedRefused.Add(1)
			s.logger.Error("OTLP receiver refused a transition's spans; dropped", "request_id", ts[0].t.RequestID, "seq", ts[0].t.Seq, "error", err)
			return true
		}
		p.failures.Add(1)
		s.n.exportFailures.Add(1)
		s.failLog.log(s.logger, "OTLP export failing; spans wait in the spool and are retried", "error", err,
			"spool_bytes", p.spool.Stats().Bytes)
		select {
		case <-time.After(min(retryBase<<min(attempt, 8), retryMax)):
		case <-ctx.Done():
			return false
		}
	}
}

// rateLog logs a message at most once per interval.
type rateLog struct {
	mu   sync.Mutex
	last time.Time
}

func (r *rateLog) log(l hclog.Logger, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < 30*time.Second {
		r.mu.Unlock()
		return
	}
	r.last = now
	r.mu.Unlock()
	l.Warn(msg, args...)
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
