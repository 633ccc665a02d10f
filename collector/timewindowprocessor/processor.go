// Package timewindowprocessor is the collector's timewindow processor: it
// drops the spans whose time the ClickHouse tables would never keep (older
// than the retention, further ahead than max_future_skew, or so far ahead
// that the partition and TTL arithmetic overflows) and counts them. It sits
// in front of the contrib clickhouse exporter (otel_traces), which has no
// such rule: one request with spans on more than 100 days made every insert
// fail with "too many partitions" and blocked its queue. The rule is
// internal/timewindow, the one the statustrace exporter applies to status
// rows, so both pipelines drop the same spans.
package timewindowprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/statustrace/statustrace/internal/timewindow"
)

// Type is the component type in configurations.
var Type = component.MustNewType("timewindow")

const scopeName = "github.com/statustrace/statustrace/collector/timewindowprocessor"

// Config is the processor's configuration (README.md documents it).
type Config struct {
	// Retention: spans that started longer ago are dropped as expired.
	// Set it to the retention (ttl) of the tables the pipeline writes.
	Retention time.Duration `mapstructure:"retention"`
	// MaxFutureSkew: spans that start or end later than now + this are
	// dropped as bad_timestamp.
	MaxFutureSkew time.Duration `mapstructure:"max_future_skew"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	return c.window().Validate()
}

func (c *Config) window() timewindow.Window {
	return timewindow.Window{Retention: c.Retention, MaxSkew: c.MaxFutureSkew}
}

// NewFactory creates the processor's factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(Type, func() component.Config {
		return &Config{Retention: 72 * time.Hour, MaxFutureSkew: 10 * time.Minute}
	}, processor.WithTraces(createTraces, component.StabilityLevelAlpha))
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	c := cfg.(*Config)
	dropped, err := set.MeterProvider.Meter(scopeName).Int64Counter("statustrace_timewindow_spans_dropped",
		metric.WithDescription("Spans dropped because their time is outside what the tables keep, by reason (expired, bad_timestamp)."),
		metric.WithUnit("{span}"))
	if err != nil {
		return nil, err
	}
	p := &windowProcessor{window: c.window(), now: time.Now, dropped: dropped}
	for _, v := range []timewindow.Verdict{timewindow.Expired, timewindow.Future} {
		p.attrs[v] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", v.String())))
	}
	p.attrs[timewindow.Overflow] = p.attrs[timewindow.Future]
	for _, v := range []timewindow.Verdict{timewindow.Expired, timewindow.Future} {
		dropped.Add(ctx, 0, p.attrs[v]) // the series exist from the start, for alerts on their increase
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, p.process,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
}

type windowProcessor struct {
	window  timewindow.Window
	now     func() time.Time
	dropped metric.Int64Counter
	attrs   [4]metric.MeasurementOption
}

// judge is the verdict on one span: its start time decides whether it is
// kept (the otel_traces table partitions and expires on it); an end time too
// far ahead marks it bad as well.
func judge(b timewindow.Bounds, sp ptrace.Span) timewindow.Verdict {
	if v := b.Check(int64(sp.StartTimestamp())); v != timewindow.OK {
		return v
	}
	if v := b.Check(int64(sp.EndTimestamp())); v == timewindow.Future || v == timewindow.Overflow {
		return v
	}
	return timewindow.OK
}

func (p *windowProcessor) process(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	b := p.window.At(p.now())
	var counts [4]int64
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			ss.Spans().RemoveIf(func(sp ptrace.Span) bool {
				v := judge(b, sp)
				counts[v]++
				return v != timewindow.OK
			})
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
	for v := timewindow.Expired; v <= timewindow.Overflow; v++ {
		if counts[v] > 0 {
			p.dropped.Add(ctx, counts[v], p.attrs[v])
		}
	}
	if td.ResourceSpans().Len() == 0 {
		return td, processorhelper.ErrSkipProcessingData
	}
	return td, nil
}
