package statustraceexporter

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/statustrace/statustrace/exporter/internal/rows"
	"github.com/statustrace/statustrace/exporter/migrate"
	"github.com/statustrace/statustrace/internal/timewindow"
	"github.com/statustrace/statustrace/testkit/chtest"
)

// ceiling is the limit no exporter can beat on an engine: the same rows the
// exporter writes, already mapped (outside the clock), inserted with one
// plain clickhouse-go columnar batch per payload into the same schema
// (transitions and the views it feeds), over the same connection options.
// BENCH exporter_vs_ceiling divides the exporter's spans/s by its rows/s.
type ceiling struct {
	conn   driver.Conn
	sql    string
	types  []clickhouse.ColumnNameAndType
	wall   time.Duration
	stored int
	window timewindow.Window
}

func newCeiling(b *testing.B, cfg Config, db *chtest.DB) *ceiling {
	b.Helper()
	cfg.Endpoint, cfg.Database = db.DSN, db.Name
	opts, err := cfg.clickhouseOptions()
	if err != nil {
		b.Fatal(err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	if _, err := migrate.Up(context.Background(), conn, cfg.migrateOptions()); err != nil {
		b.Fatalf("ceiling schema: %v", err)
	}
	c := &ceiling{conn: conn, window: cfg.window()}
	names := make([]string, len(rows.InsertColumns))
	for i, col := range rows.InsertColumns {
		names[i] = col.Name
		c.types = append(c.types, clickhouse.ColumnNameAndType{Name: col.Name, Type: col.Type})
	}
	c.sql = insertSQL(db.Name, names)
	return c
}

// export maps td untimed, then times the insert alone.
func (c *ceiling) export(b *testing.B, td ptrace.Traces) {
	b.Helper()
	var cols rows.Columns
	rows.Map(td, &cols, c.window.At(time.Now()))
	ctx := clickhouse.Context(context.Background(), clickhouse.WithColumnNamesAndTypes(c.types))
	t0 := time.Now()
	batch, err := c.conn.PrepareBatch(ctx, c.sql)
	if err != nil {
		b.Fatalf("ceiling: prepare: %v", err)
	}
	for i, col := range cols.Slices() {
		if err := batch.Column(i).Append(col); err != nil {
			b.Fatalf("ceiling: append %s: %v", rows.InsertColumns[i].Name, err)
		}
	}
	if err := batch.Send(); err != nil {
		b.Fatalf("ceiling: send: %v", err)
	}
	c.wall += time.Since(t0)
	c.stored += cols.Len()
}
