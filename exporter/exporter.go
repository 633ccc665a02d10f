package statustraceexporter

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/statustrace/statustrace/exporter/internal/metadata"
	"github.com/statustrace/statustrace/exporter/internal/rows"
	"github.com/statustrace/statustrace/exporter/migrate"
	"github.com/statustrace/statustrace/internal/bgstart"
	"github.com/statustrace/statustrace/internal/chwrite"
)

type statusExporter struct {
	cfg       *Config
	logger    *zap.Logger
	tel       *metadata.Telemetry
	drops     *dropLog
	insertSQL string
	colTypes  []clickhouse.ColumnNameAndType
	now       func() time.Time

	conn driver.Conn
	pool sync.Pool // *rows.Columns

	schema *bgstart.Runner // creates the schema in the background

	// Attribute sets per index of rows.Stats' arrays, sized by the same
	// constants: a new reason or field cannot index past them.
	dropAttrs   [rows.NumDropReasons]metric.MeasurementOption
	repairAttrs [len(repairNames)][rows.NumFields]metric.MeasurementOption
}

// repairNames are the "repair" attribute values, in repairAttrs order:
// rows.Stats.Truncated, then rows.Stats.Sanitized.
var repairNames = [...]string{"truncated", "invalid_utf8"}

// errSchemaPending fails exports (retryably: the queue keeps the data) and
// marks the component not ready until the schema is in place.
var errSchemaPending = errors.New("statustrace schema not created yet (ClickHouse unreachable or migrating); retrying in the background")

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
		now:    time.Now,
		pool:   sync.Pool{New: func() any { return new(rows.Columns) }},
		schema: bgstart.Ready(),
	}
	names := make([]string, len(rows.InsertColumns))
	for i, c := range rows.InsertColumns {
		names[i] = c.Name
		e.colTypes = append(e.colTypes, clickhouse.ColumnNameAndType{Name: c.Name, Type: c.Type})
	}
	e.insertSQL = insertSQL(cfg.database(), names)
	for _, r := range rows.DropReasons() {
		e.dropAttrs[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r.String())))
		// Every series exists from the start, at 0: an alert on its
		// increase then sees the first drop too.
		tel.SpansDropped.Add(context.Background(), 0, e.dropAttrs[r])
	}
	for i, repair := range repairNames {
		for f := range e.repairAttrs[i] {
			e.repairAttrs[i][f] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("field", rows.Field(f).String()), attribute.String("repair", repair)))
		}
	}
	return e, nil
}

// start opens the connection (which does not dial) and, with create_schema,
// creates or migrates the schema in the background: ClickHouse refusing
// connections or hanging must not keep the collector from starting and
// taking OTLP into its queue. Until the schema is there the component
// reports a recoverable error, so a component-status health check
// (healthcheckv2) answers "not ready".
func (e *statusExporter) start(_ context.Context, host component.Host) error {
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
		e.schema = bgstart.Start(host, e.logger.With(zap.String("endpoint", e.cfg.redactedEndpoint())), bgstart.Step{
			What: "schema migration", Limit: e.cfg.CreateSchemaTimeout, Attempt: e.migrateOnce, NotReady: errSchemaPending,
		})
	}
	return nil
}

// migrateOnce is one attempt (bounded by create_schema_timeout).
func (e *statusExporter) migrateOnce(ctx context.Context) error {
	res, err := migrate.Up(ctx, e.conn, e.cfg.migrateOptions())
	if err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	e.logger.Info("statustrace schema ready",
		zap.String("database", e.cfg.database()),
		zap.Uint32("version", res.Version),
		zap.Any("applied", res.Applied),
		zap.Bool("retention_changed", res.RetentionChanged))
	return nil
}

func (e *statusExporter) shutdown(context.Context) error {
	e.schema.Stop()
	e.drops.flush()
	if e.conn != nil {
		return e.conn.Close()
	}
	return nil
}

// pushTraces writes the status transitions in td. What ClickHouse would
// never keep (malformed, expired, too far ahead, seq 0, a key that is not
// UTF-8) is dropped before the insert; a row ClickHouse refuses on its own
// is found by bisection and dropped, while every other row is written.
// Drops and repairs are counted once, when the batch's outcome is final:
// an error returned is transient, and exporterhelper retries the whole
// batch (the schema makes re-writing idempotent).
func (e *statusExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	c := e.pool.Get().(*rows.Columns)
	defer func() {
		c.Reset()
		e.pool.Put(c)
	}()
	window := e.cfg.window().At(e.now())
	st := rows.Map(td, c, window)
	written := c.Len()
	if written > 0 {
		// A batch that arrives during start-up waits for the schema within
		// its export timeout, then fails retryably.
		if err := e.schema.Wait(ctx, errSchemaPending); err != nil {
			return err
		}
		done, err := chwrite.Bisect(ctx, c.Len(), func(ctx context.Context, lo, hi int) error {
			part := c
			if lo != 0 || hi != c.Len() {
				part = c.Slice(lo, hi)
			}
			return e.insert(ctx, part)
		}, func(i int, err error) {
			st.Dropped[rows.DropRejected]++
			st.Example[rows.DropRejected] = rows.DropDetail{Attribute: rows.Truncate(strings.ToValidUTF8(err.Error(), "?"), 300), RequestID: c.RequestID[i]}
			written--
		})
		if err != nil {
			err = fmt.Errorf("insert %d transitions into %s: %w", c.Len(), e.cfg.redactedEndpoint(), err)
			if done == 0 {
				return err // nothing final: the whole batch is retried, counted then
			}
			// A bisection stopped part-way (its deadline, ClickHouse gone):
			// the first done rows' outcome is final and counted now, only
			// the rest is retried, so a long bisection still progresses.
			repaired, rest := rows.SplitAt(td, window, done)
			st.Truncated, st.Sanitized = repaired.Truncated, repaired.Sanitized
			e.record(ctx, &st)
			if n := done - st.Dropped[rows.DropRejected]; n > 0 {
				e.tel.RowsWritten.Add(ctx, int64(n))
			}
			return consumererror.NewTraces(err, rest)
		}
	}
	e.record(ctx, &st)
	if written > 0 {
		e.tel.RowsWritten.Add(ctx, int64(written))
	}
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
	if err := appendColumns(batch.Columns(), c); err != nil {
		return chwrite.DataError(err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	return nil
}

// parallelAppendMin is the batch size from which appendColumns hands the
// columns over side by side: below it a goroutine costs more than it saves.
const parallelAppendMin = 4096

// appendColumns appends c's columns to an insert's (dst, InsertColumns
// order). After mapping, the driver's append is the largest share of the
// exporter's own time per insert (boxing, LowCardinality dictionaries,
// buffers: about 0.6 us per row), and columns share nothing, so a large
// batch's columns go to up to GOMAXPROCS goroutines, each taking the next
// column not yet taken. The columns are appended to directly rather than
// through the batch's Column(i).Append, which on an error releases the
// connection from whichever goroutine failed; here errors are only
// collected, and the caller's batch.Close releases it once.
func appendColumns(dst []column.Interface, c *rows.Columns) error {
	if len(dst) != len(rows.InsertColumns) {
		return fmt.Errorf("insert has %d columns, want %d", len(dst), len(rows.InsertColumns))
	}
	errs := make([]error, len(dst))
	appendOne := func(i int) {
		if _, err := dst[i].Append(c.Column(i)); err != nil {
			errs[i] = fmt.Errorf("append column %s: %w", rows.InsertColumns[i].Name, err)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(dst))
	if c.Len() < parallelAppendMin || workers < 2 {
		for i := range dst {
			if appendOne(i); errs[i] != nil {
				return errs[i]
			}
		}
		return nil
	}
	var next atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(dst); i = int(next.Add(1)) - 1 {
				appendOne(i)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// record counts drops and repairs as metrics and in a rate-limited log. It
// is called once per batch, when the batch's outcome is final.
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
	d.logPending()
}

// flush logs what is pending now, whatever the interval (at shutdown: the
// counts since the last line must not be lost with the process).
func (d *dropLog) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.logPending()
}

// logPending writes one line with the pending counts; d.mu is held.
func (d *dropLog) logPending() {
	if d.pending.TotalDropped() == 0 {
		return
	}
	fields := make([]zap.Field, 0, 2*len(d.pending.Dropped))
	for r, n := range d.pending.Dropped {
		if n == 0 {
			continue
		}
		ex := d.pending.Example[r]
		fields = append(fields, zap.Int(rows.DropReason(r).String(), n),
			zap.String(rows.DropReason(r).String()+"_example", ex.Attribute+" (request_id "+ex.RequestID+")"))
	}
	d.logger.Warn("dropped status spans", fields...)
	d.pending = rows.Stats{}
}
