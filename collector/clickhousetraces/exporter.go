// Package clickhousetraces is the distribution's "clickhouse" exporter: the
// contrib clickhouseexporter (otel_traces, for Grafana's trace view), with
// two things the contrib one lacks at v0.165.x and that the status pipeline
// needs from every exporter in the collector:
//
//   - It starts whatever ClickHouse does. The contrib exporter creates its
//     schema in Start, so a ClickHouse refusing connections made the whole
//     collector exit, and a hanging one held every OTLP port closed. Here
//     the contrib exporter is started in the background, each attempt
//     bounded by the exporter's timeout, retried with backoff; exports wait
//     in the queue meanwhile, and the component reports a recoverable error
//     (not ready, for healthcheckv2) until its schema is there.
//   - A batch ClickHouse refuses does not block the queue. Errors are
//     classified by internal/chwrite (the table the statustrace exporter
//     uses); a permanent one is bisected so every good span is written and
//     each refused span is dropped and counted.
//
// Configuration is exactly the contrib exporter's (same type, same keys):
// its sending_queue, retry_on_failure and timeout apply here, around the
// contrib exporter, which runs without its own queue and retry. Only the
// traces signal is offered.
package clickhousetraces

import (
	"context"
	"errors"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/metric"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"

	"github.com/statustrace/statustrace/internal/bgstart"
	"github.com/statustrace/statustrace/internal/chwrite"
)

const scopeName = "github.com/statustrace/statustrace/collector/clickhousetraces"

// NewFactory returns the factory of the wrapped contrib exporter, under the
// contrib exporter's type ("clickhouse") and configuration.
func NewFactory() exporter.Factory {
	contrib := clickhouseexporter.NewFactory()
	return exporter.NewFactory(contrib.Type(), contrib.CreateDefaultConfig,
		exporter.WithTraces(func(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
			return create(ctx, contrib, set, cfg.(*clickhouseexporter.Config))
		}, contrib.TracesStability()))
}

// errNotReady fails exports (retryably) until the contrib exporter started.
var errNotReady = errors.New("otel_traces schema not created yet (ClickHouse unreachable or slow); retrying in the background")

type tracesExporter struct {
	inner    exporter.Traces
	logger   *zap.Logger
	attempt  time.Duration // time limit of one start attempt
	rejected metric.Int64Counter
	started  *bgstart.Runner
}

func create(ctx context.Context, contrib exporter.Factory, set exporter.Settings, cfg *clickhouseexporter.Config) (exporter.Traces, error) {
	// The contrib exporter runs bare: no queue, no retry of its own (they
	// are ours, around it), no metrics of its own (exporterhelper's would
	// count every span twice under the same component ID), and no error
	// line of its helper for a push that ours retries or bisects.
	innerCfg := *cfg
	innerCfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	innerCfg.BackOffConfig.Enabled = false
	innerSet := set
	innerSet.TelemetrySettings.MeterProvider = noopmetric.NewMeterProvider()
	innerSet.TelemetrySettings.Logger = innerLogger(set.Logger)
	inner, err := contrib.CreateTraces(ctx, innerSet, &innerCfg)
	if err != nil {
		return nil, err
	}
	rejected, err := set.MeterProvider.Meter(scopeName).Int64Counter("statustrace_clickhouse_spans_rejected",
		metric.WithDescription("Spans ClickHouse refused on their own (a permanent error), dropped after bisecting the batch."),
		metric.WithUnit("{span}"))
	if err != nil {
		return nil, err
	}
	rejected.Add(ctx, 0) // the series exists from the start, for alerts on its increase
	e := &tracesExporter{inner: inner, logger: set.Logger, attempt: cfg.TimeoutSettings.Timeout, rejected: rejected}
	if e.attempt <= 0 {
		e.attempt = 30 * time.Second
	}
	return exporterhelper.NewTraces(ctx, set, cfg, e.push,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(cfg.TimeoutSettings),
		exporterhelper.WithRetry(cfg.BackOffConfig),
		exporterhelper.WithQueue(cfg.QueueSettings),
	)
}

func (e *tracesExporter) start(_ context.Context, host component.Host) error {
	e.started = bgstart.Start(host, e.logger, bgstart.Step{
		What:  "otel_traces exporter start (schema creation)",
		Limit: e.attempt,
		Attempt: func(ctx context.Context) error {
			err := e.inner.Start(ctx, host)
			if err != nil {
				_ = e.inner.Shutdown(context.Background()) // closes the failed attempt's connection
			}
			return err
		},
		NotReady: errNotReady,
	})
	return nil
}

func (e *tracesExporter) shutdown(ctx context.Context) error {
	if e.started == nil {
		return nil
	}
	e.started.Stop()
	if !e.started.IsReady() {
		return nil // every failed attempt shut itself down
	}
	return e.inner.Shutdown(ctx)
}

func (e *tracesExporter) push(ctx context.Context, td ptrace.Traces) error {
	if err := e.started.Wait(ctx, errNotReady); err != nil {
		return err
	}
	n := td.SpanCount()
	var rejected int64
	var example error
	done, err := chwrite.Bisect(ctx, n, func(ctx context.Context, lo, hi int) error {
		part := td
		if lo != 0 || hi != n {
			part = spanRange(td, lo, hi)
		}
		return e.inner.ConsumeTraces(ctx, part)
	}, func(_ int, err error) {
		rejected++
		example = err
	})
	if rejected > 0 {
		e.rejected.Add(ctx, rejected)
		e.logger.Warn("dropped spans ClickHouse refused", zap.Int64("spans", rejected), zap.Int("of", n), zap.Error(example))
	}
	switch {
	case err == nil:
		return nil
	case done == 0:
		return err
	default: // stopped part-way: retry only what is not final yet
		return consumererror.NewTraces(err, spanRange(td, done, n))
	}
}

// spanRange copies spans [lo, hi) of td (in resource, scope, span order)
// into a payload of their own, with their resources and scopes.
func spanRange(td ptrace.Traces, lo, hi int) ptrace.Traces {
	out := ptrace.NewTraces()
	i := 0
	rss := td.ResourceSpans()
	for r := 0; r < rss.Len() && i < hi; r++ {
		rs := rss.At(r)
		var ors ptrace.ResourceSpans
		haveRS := false
		sss := rs.ScopeSpans()
		for s := 0; s < sss.Len() && i < hi; s++ {
			ss := sss.At(s)
			spans := ss.Spans()
			if i+spans.Len() <= lo {
				i += spans.Len()
				continue
			}
			if !haveRS {
				ors = out.ResourceSpans().AppendEmpty()
				rs.Resource().CopyTo(ors.Resource())
				ors.SetSchemaUrl(rs.SchemaUrl())
				haveRS = true
			}
			oss := ors.ScopeSpans().AppendEmpty()
			ss.Scope().CopyTo(oss.Scope())
			oss.SetSchemaUrl(ss.SchemaUrl())
			for k := 0; k < spans.Len(); k, i = k+1, i+1 {
				if i >= lo && i < hi {
					spans.At(k).CopyTo(oss.Spans().AppendEmpty())
				}
			}
		}
	}
	return out
}
