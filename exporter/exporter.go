package statustraceexporter

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/statustrace/statustrace/exporter/internal/metadata"
	"github.com/statustrace/statustrace/exporter/internal/rows"
	"github.com/statustrace/statustrace/exporter/migrate"
)

type statusExporter struct {
	cfg       *Config
	logger    *zap.Logger
	tel       *metadata.Telemetry
	drops     *dropLog
	insertSQL string
	colTypes  []clickhouse.ColumnNameAndType

	conn driver.Conn
	pool sync.Pool // *rows.Columns

	schemaMu    sync.Mutex
	schemaReady atomic.Bool

	dropAttrs   [8]metric.MeasurementOption
	repairAttrs [2][8]metric.MeasurementOption
}

func newExporter(cfg *Config, set exporter.Settings) (*statusExporter, error) {
	tel, err := metadata.NewTelemetry(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("statustrace exporter telemetry: %w", err)
	}
	e := &statusExporter{
		cfg:    cfg,
		logger: set.Logger,
		tel:    tel,
		drops:  newDropLog(set.Logger, 10*time.Second, time.Now),
		pool:   sync.Pool{New: func() any { return new(rows.Columns) }},
	}
	names := make([]string, len(rows.InsertColumns))
	for i, c := range rows.InsertColumns {
		names[i] = c.Name
		e.colTypes = append(e.colTypes, clickhouse.ColumnNameAndType{Name: c.Name, Type: c.Type})
	}
	e.insertSQL = insertSQL(cfg.database(), names)
	for r := range e.dropAttrs {
		e.dropAttrs[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", rows.DropReason(r).String())))
	}
	for i, repair := range []string{"truncated", "invalid_utf8"} {
		for f := range e.repairAttrs[i] {
			e.repairAttrs[i][f] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("field", rows.Field(f).String()), attribute.String("repair", repair)))
		}
	}
	if !cfg.CreateSchema {
		e.schemaReady.Store(true)
	}
	return e, nil
}

func (e *statusExporter) start(ctx context.Context, _ component.Host) error {
	opt, err := e.cfg.clickhouseOptions()
	if err != nil {
		return err
	}
	conn, err := clickhouse.Open(opt)
	if err != nil {
		return fmt.Errorf("open clickhouse %s: %w", e.cfg.redactedEndpoint(), err)
	}
	e.conn = conn
	if e.cfg.CreateSchema {
		// A ClickHouse that is down at start must not stop the collector
		// (the persistent queue is still read and the data kept): the first
		// export retries the migration.
		if err := e.ensureSchema(ctx); err != nil {
			e.logger.Warn("schema migration failed; will retry before the first insert",
				zap.String("endpoint", e.cfg.redactedEndpoint()), zap.Error(err))
		}
	}
	return nil
}

func (e *statusExporter) shutdown(context.Context) error {
	if e.conn != nil {
		return e.conn.Close()
	}
	return nil
}

// ensureSchema runs the migrations once per process; until they succeed
// every export fails with a retryable error.
func (e *statusExporter) ensureSchema(ctx context.Context) error {
	if e.schemaReady.Load() {
		return nil
	}
	e.schemaMu.Lock()
	defer e.schemaMu.Unlock()
	if e.schemaReady.Load() {
		return nil
	}
	res, err := migrate.Up(ctx, e.conn, e.cfg.migrateOptions())
	if err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	e.schemaReady.Store(true)
	e.logger.Info("statustrace schema ready",
		zap.String("database", e.cfg.database()),
		zap.Uint32("version", res.Version),
		zap.Any("applied", res.Applied),
		zap.Bool("retention_changed", res.RetentionChanged))
	return nil
}

// pushTraces writes the status transitions in td. Malformed status spans
// are dropped and counted here and never fail the batch; an error returned
// is about ClickHouse and is retried by exporterhelper with the whole
// batch, which the schema makes idempotent.
func (e *statusExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	c := e.pool.Get().(*rows.Columns)
	defer func() {
		c.Reset()
		e.pool.Put(c)
	}()
	st := rows.Map(td, c)
	e.record(ctx, &st)
	if c.Len() == 0 {
		return nil
	}
	if err := e.ensureSchema(ctx); err != nil {
		return err
	}
	if err := e.insert(ctx, c); err != nil {
		return fmt.Errorf("insert %d transitions into %s: %w", c.Len(), e.cfg.redactedEndpoint(), err)
	}
	e.tel.RowsWritten.Add(ctx, int64(c.Len()))
	return nil
}

func (e *statusExporter) insert(ctx context.Context, c *rows.Columns) error {
	// Known column types spare the HTTP protocol a DESCRIBE per batch.
	ctx = clickhouse.Context(ctx, clickhouse.WithColumnNamesAndTypes(e.colTypes))
	batch, err := e.conn.PrepareBatch(ctx, e.insertSQL)
	if err != nil {
		return fmt.Errorf("prepare batch: %w", err)
	}
	defer batch.Close()
	for i, col := range c.Slices() {
		if err := batch.Column(i).Append(col); err != nil {
			return fmt.Errorf("append column %s: %w", rows.InsertColumns[i].Name, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	return nil
}

// record counts drops and repairs as metrics and in a rate-limited log.
func (e *statusExporter) record(ctx context.Context, st *rows.Stats) {
	dropped := false
	for r, n := range st.Dropped {
		if n > 0 {
			e.tel.SpansDropped.Add(ctx, int64(n), e.dropAttrs[r])
			dropped = true
		}
	}
	for f := range st.Truncated {
		if n := st.Truncated[f]; n > 0 {
			e.tel.FieldsRepaired.Add(ctx, int64(n), e.repairAttrs[0][f])
		}
		if n := st.Sanitized[f]; n > 0 {
			e.tel.FieldsRepaired.Add(ctx, int64(n), e.repairAttrs[1][f])
		}
	}
	if dropped {
		e.drops.add(st)
	}
}

// dropLog logs dropped spans at most once per interval, with the counts
// since the last line and one example per reason, so a flood of bad spans
// cannot flood the log.
type dropLog struct {
	logger   *zap.Logger
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	last    time.Time
	pending rows.Stats
}

func newDropLog(l *zap.Logger, interval time.Duration, now func() time.Time) *dropLog {
	return &dropLog{logger: l, interval: interval, now: now}
}

func (d *dropLog) add(st *rows.Stats) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for r, n := range st.Dropped {
		if n > 0 {
			d.pending.Dropped[r] += n
			d.pending.Example[r] = st.Example[r]
		}
	}
	now := d.now()
	if now.Sub(d.last) < d.interval {
		return
	}
	d.last = now
	fields := make([]zap.Field, 0, 2*len(d.pending.Dropped))
	for r, n := range d.pending.Dropped {
		if n == 0 {
			continue
		}
		ex := d.pending.Example[r]
		fields = append(fields, zap.Int(rows.DropReason(r).String(), n),
			zap.String(rows.DropReason(r).String()+"_example", ex.Attribute+" (request_id "+ex.RequestID+")"))
	}
	d.logger.Warn("dropped malformed status spans", fields...)
	d.pending = rows.Stats{}
}
