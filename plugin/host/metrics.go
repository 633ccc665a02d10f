package host

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/statustrace/statustrace/event"
)

// metrics are observed from the Reporter's counters at collection time, so
// the Report path pays nothing for them.
type metrics struct {
	reg metric.Registration
}

func newMetrics(mp metric.MeterProvider, r *Reporter) (*metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(event.ScopeName + "/host")
	var errs []error
	counterOf := func(unit, name, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		if err != nil {
			errs = append(errs, err)
		}
		return c
	}
	counter := func(name, desc string) metric.Int64ObservableCounter { return counterOf("{transition}", name, desc) }
	gauge := func(name, desc, unit string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
		if err != nil {
			errs = append(errs, err)
		}
		return g
	}
	reported := counter("statustrace.reporter.reported", "Transitions accepted into the buffer.")
	dropped := counter("statustrace.reporter.dropped", "Transitions dropped by the reporter (reason: buffer_full, closed).")
	sent := counter("statustrace.reporter.sent", "Transitions written to the plugin stream, re-sends included.")
	acked := counter("statustrace.reporter.acked", "Transitions acknowledged by the plugin.")
	rejected := counter("statustrace.reporter.rejected", "Transitions the plugin dropped as invalid.")
	restarts := counterOf("{restart}", "statustrace.reporter.plugin.restarts", "Plugin processes launched after the first.")
	depth := gauge("statustrace.reporter.queue.depth", "Transitions waiting in the buffer.", "{transition}")
	// The capacity lets an alert compare depth with it (deploy/prometheus).
	capacity := gauge("statustrace.reporter.queue.capacity", "Transitions the buffer holds at most.", "{transition}")
	unacked := gauge("statustrace.reporter.batches.unacked", "Batches not yet acknowledged by the plugin.", "{batch}")
	// What the plugin does with what it acknowledged (its spool).
	spooled := counter("statustrace.reporter.spool.spooled", "Transitions the plugin wrote to its durable spool (and acknowledged).")
	exported := counter("statustrace.reporter.spool.exported", "Transitions whose spans the OTLP receiver accepted.")
	replayed := counter("statustrace.reporter.spool.replayed", "Transitions sent from a spool an earlier plugin process left (restart, crash).")
	spoolDropped := counter("statustrace.reporter.spool.dropped", "Transitions the plugin acknowledged but dropped (reason: spool_full, corrupt, refused).")
	exportFailures := counterOf("{request}", "statustrace.reporter.spool.export_failures", "Failed OTLP export attempts; the spans stay spooled and are retried.")
	refusedSpans := counterOf("{span}", "statustrace.reporter.spans.refused", "Spans the OTLP receiver refused in a partial success (not retried).")
	spoolBytes := gauge("statustrace.reporter.spool.bytes", "Size of the plugin's spool on disk.", "By")
	if len(errs) > 0 {
		return nil, fmt.Errorf("statustrace host metrics: %w", errs[0])
	}
	full := metric.WithAttributes(attribute.String("reason", "buffer_full"))
	closed := metric.WithAttributes(attribute.String("reason", "closed"))
	spoolFull := metric.WithAttributes(attribute.String("reason", "spool_full"))
	corrupt := metric.WithAttributes(attribute.String("reason", "corrupt"))
	refused := metric.WithAttributes(attribute.String("reason", "refused"))
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := r.Stats()
		o.ObserveInt64(reported, int64(s.Reported))
		o.ObserveInt64(dropped, int64(r.droppedFull.Load()), full)
		o.ObserveInt64(dropped, int64(r.droppedClosed.Load()), closed)
		o.ObserveInt64(sent, int64(s.Sent))
		o.ObserveInt64(acked, int64(s.Acked))
		o.ObserveInt64(rejected, int64(s.Rejected))
		o.ObserveInt64(restarts, int64(s.Restarts))
		o.ObserveInt64(depth, int64(s.QueueDepth))
		o.ObserveInt64(capacity, int64(len(r.ring.cells)))
		o.ObserveInt64(unacked, int64(s.Unacked))
		o.ObserveInt64(spooled, int64(s.Spooled))
		o.ObserveInt64(exported, int64(s.Exported))
		o.ObserveInt64(replayed, int64(s.Replayed))
		o.ObserveInt64(spoolDropped, int64(s.DroppedSpoolFull), spoolFull)
		o.ObserveInt64(spoolDropped, int64(s.DroppedCorrupt), corrupt)
		o.ObserveInt64(spoolDropped, int64(s.DroppedRefused), refused)
		o.ObserveInt64(exportFailures, int64(s.ExportFailures))
		o.ObserveInt64(refusedSpans, int64(s.RefusedSpans))
		o.ObserveInt64(spoolBytes, int64(s.SpoolBytes))
		return nil
	}, reported, dropped, sent, acked, rejected, restarts, depth, capacity, unacked,
		spooled, exported, replayed, spoolDropped, exportFailures, refusedSpans, spoolBytes)
	if err != nil {
		return nil, fmt.Errorf("statustrace host metrics: %w", err)
	}
	return &metrics{reg: reg}, nil
}

func (m *metrics) close() {
	if m != nil && m.reg != nil {
		_ = m.reg.Unregister()
	}
}
