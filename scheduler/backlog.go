package scheduler

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/statustrace/statustrace/event"
)

// Backlog metric names: per function, the events waiting (queued or for a
// retry) and how long ago the oldest of them was accepted — what AWS
// Lambda's AsyncEventAge tells. Every node reads the shared job table, so
// with several nodes each reports the same value: aggregate with max.
const (
	MetricBacklogWaiting   = "statustrace.scheduler.backlog.waiting"
	MetricBacklogOldestAge = "statustrace.scheduler.backlog.oldest_age"
)

// backlogTimeout bounds the query behind one collection.
const backlogTimeout = 5 * time.Second

// registerBacklog adds the backlog gauges, read from the database at each
// collection (a scrape), never more often.
func (s *Scheduler) registerBacklog(mp metric.MeterProvider) (metric.Registration, error) {
	m := mp.Meter(MeterName)
	waiting, err := m.Int64ObservableGauge(MetricBacklogWaiting,
		metric.WithDescription("Events waiting to run (queued or waiting for a retry), per function."), metric.WithUnit("{event}"))
	if err != nil {
		return nil, fmt.Errorf("scheduler: metric: %w", err)
	}
	age, err := m.Float64ObservableGauge(MetricBacklogOldestAge,
		metric.WithDescription("Age of the oldest waiting event (since it was accepted), per function; 0 when none waits."), metric.WithUnit("s"))
	if err != nil {
		return nil, fmt.Errorf("scheduler: metric: %w", err)
	}
	reg, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, backlogTimeout)
		defer cancel()
		rows, err := s.store.Backlog(ctx)
		if err != nil {
			return fmt.Errorf("scheduler: backlog: %w", err)
		}
		seen := map[string]bool{}
		for _, b := range rows {
			attrs := metric.WithAttributeSet(attribute.NewSet(
				attribute.String(event.AttrNamespace, b.Namespace),
				attribute.String(event.AttrFunction, b.Function)))
			o.ObserveInt64(waiting, b.Waiting, attrs)
			o.ObserveFloat64(age, b.OldestAgeSeconds, attrs)
			seen[b.Namespace+"/"+b.Function] = true
		}
		// Functions with nothing waiting show 0, so an alert resolves
		// rather than losing its series.
		for key, f := range s.fns {
			if !seen[key] {
				o.ObserveInt64(waiting, 0, f.attrs)
				o.ObserveFloat64(age, 0, f.attrs)
			}
		}
		return nil
	}, waiting, age)
	if err != nil {
		return nil, fmt.Errorf("scheduler: metric: %w", err)
	}
	return reg, nil
}
