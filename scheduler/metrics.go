package scheduler

import (
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/scheduler/config"
)

// MeterName is the instrumentation scope of the scheduler's metrics.
const MeterName = "github.com/statustrace/statustrace/scheduler"

// Metric names.
const (
	MetricAccepted = "statustrace.scheduler.invocations.accepted"
	MetricRejected = "statustrace.scheduler.invocations.rejected"
)

type metrics struct {
	accepted metric.Int64Counter
	rejected metric.Int64Counter
}

// Rejection reasons (the counter's "reason" label).
var (
	reasonQPS       = metric.WithAttributes(attribute.String("reason", "qps_limit"))
	reasonArrears   = metric.WithAttributes(attribute.String("reason", "arrears"))
	reasonSuspended = metric.WithAttributes(attribute.String("reason", "suspended"))
)

func newMetrics(mp metric.MeterProvider) (metrics, error) {
	m := mp.Meter(MeterName)
	var ms metrics
	var err error
	if ms.accepted, err = m.Int64Counter(MetricAccepted,
		metric.WithDescription("Invocations accepted (enqueued as events)."), metric.WithUnit("{invocation}")); err != nil {
		return ms, fmt.Errorf("scheduler: metric: %w", err)
	}
	if ms.rejected, err = m.Int64Counter(MetricRejected,
		metric.WithDescription("Invocations refused before anything was enqueued (no event exists for them)."), metric.WithUnit("{invocation}")); err != nil {
		return ms, fmt.Errorf("scheduler: metric: %w", err)
	}
	return ms, nil
}

func functionAttrs(f *config.Function) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(
		attribute.String(event.AttrNamespace, f.Namespace),
		attribute.String(event.AttrFunction, f.Name),
	))
}
