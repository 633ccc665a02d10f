// Package statustraceexporter is the statustrace ClickHouse exporter: it
// takes the status spans the statustrace plugin emits (instrumentation scope
// event.ScopeName, span role "transition"), maps them to typed transition
// rows and batch-inserts them into ClickHouse, where materialized views keep
// the current status per event and per-minute statistics. Other spans are
// ignored (send them to otel_traces with the contrib clickhouseexporter).
package statustraceexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/statustrace/statustrace/exporter/internal/metadata"
	"github.com/statustrace/statustrace/internal/schema"
)

// NewFactory creates the factory of the statustrace exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithTraces(createTracesExporter, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	// Real-time status: flush small batches fast (200 ms), bigger ones as
	// soon as they fill; keep retrying while ClickHouse is down (the queue,
	// persistent with `storage`, holds the data meanwhile).
	queue := exporterhelper.NewDefaultQueueConfig()
	queue.NumConsumers = 4
	batch := exporterhelper.NewDefaultBatchConfig()
	batch.FlushTimeout = 200 * time.Millisecond
	batch.MinSize = 2000
	batch.MaxSize = 20000
	queue.Batch = configoptional.Some(batch)

	retry := configretry.NewDefaultBackOffConfig()
	retry.InitialInterval = time.Second
	retry.MaxInterval = 30 * time.Second
	retry.MaxElapsedTime = 0 // never give up: dropping status data is worse than waiting

	timeout := exporterhelper.NewDefaultTimeoutConfig()
	timeout.Timeout = 10 * time.Second

	return &Config{
		TimeoutConfig:       timeout,
		BackOffConfig:       retry,
		QueueSettings:       configoptional.Some(queue),
		Database:            schema.DefaultDatabase,
		Retention:           schema.DefaultRetentionSeconds * time.Second,
		MaxFutureSkew:       10 * time.Minute,
		CreateSchema:        true,
		CreateSchemaTimeout: 2 * time.Minute,
		Compression:         "lz4",
		ConnectionParams:    map[string]string{},
	}
}

func createTracesExporter(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	exp, err := newExporter(c, set)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewTraces(ctx, set, cfg, exp.pushTraces,
		exporterhelper.WithStart(exp.start),
		exporterhelper.WithShutdown(exp.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.BackOffConfig),
		exporterhelper.WithQueue(c.QueueSettings),
	)
}
