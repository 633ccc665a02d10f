// Package querytest seeds statustrace tables for tests of the read side
// (queries, internal/api, cmd/statustrace): it creates the schema with
// exporter/migrate, installs the views and inserts transition rows the way
// the exporter does, so the materialized views fill events and stats.
package querytest

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/exporter/migrate"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/queries"
)

// Row is one transition row, as the exporter writes it.
type Row struct {
	event.Keys
	Seq          uint64
	Attempt      uint32
	From, To     event.State
	Time         time.Time
	ErrorCode    string
	ErrorMessage string
	InvokeType   string
	Node         string
	TraceID      [16]byte
	SpanID       [8]byte
	// FromStateNS and EventNS are what the exporter derives from the span
	// (time in From, and on a terminal row the event's age); 0 = unknown.
	FromStateNS uint64
	EventNS     uint64
}

// Setup creates the schema in database db (the connection's default
// database) and installs the views.
func Setup(ctx context.Context, conn driver.Conn, db string) error {
	if _, err := migrate.Up(ctx, conn, migrate.Options{Database: db}); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := queries.Install(ctx, conn, queries.InstallOptions{Database: db}); err != nil {
		return err
	}
	return nil
}

// Seed runs Setup, loads the standard fixture (times relative to now) and
// opens a Store on the database.
func Seed(ctx context.Context, conn driver.Conn, db string, now time.Time) (*queries.Store, *Fixture, error) {
	if err := Setup(ctx, conn, db); err != nil {
		return nil, nil, err
	}
	fx := NewFixture(now)
	if err := fx.Load(ctx, conn); err != nil {
		return nil, nil, err
	}
	st, err := queries.New(ctx, conn)
	if err != nil {
		return nil, nil, err
	}
	return st, fx, nil
}

// SetVisibleRetention stores a retention setting shorter than the tables'
// TTL, so rows that are still stored are past the window the queries apply:
// it shows the queries filter, rather than relying on TTL merges.
func SetVisibleRetention(ctx context.Context, conn driver.Conn, d time.Duration) error {
	return conn.Exec(ctx, "INSERT INTO "+schema.Settings+" ("+schema.ColSettingName+", "+schema.ColSettingValue+", "+schema.ColSettingUpdatedAt+
		") VALUES ({n:String}, {v:String}, now64(3) + INTERVAL 1 SECOND)",
		namedArgs("n", schema.SettingRetentionSeconds, "v", fmt.Sprint(int64(d/time.Second)))...)
}

var insertColumns = []string{
	schema.ColTenant, schema.ColNamespace, schema.ColFunction, schema.ColQualifier, schema.ColRequestID,
	schema.ColSeq, schema.ColAttempt, schema.ColFromState, schema.ColToState, schema.ColTime,
	schema.ColErrorCode, schema.ColErrorMessage, schema.ColInvokeType, schema.ColNode, schema.ColTraceID,
	schema.ColFromStateNS, schema.ColEventNS,
}

// Insert writes rows as one insert (one block, as one exporter batch). The
// span ID is left to the schema's default (the read side only passes it
// through), so the seed does not depend on how the schema stores it.
func Insert(ctx context.Context, conn driver.Conn, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+schema.Transitions+" ("+strings.Join(insertColumns, ", ")+")")
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	for _, r := range rows {
		err := b.Append(r.Tenant, r.Namespace, r.Function, r.Qualifier, r.RequestID,
			r.Seq, r.Attempt, r.From.String(), r.To.String(), r.Time.UTC(),
			r.ErrorCode, r.ErrorMessage, r.InvokeType, r.Node, string(r.TraceID[:]), r.FromStateNS, r.EventNS)
		if err != nil {
			_ = b.Abort()
			return fmt.Errorf("append row: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows: %w", len(rows), err)
	}
	return nil
}

// Step is one transition of an event history: the state entered, how long
// after the previous transition, and an optional error.
type Step struct {
	To       event.State
	After    time.Duration
	Code     string
	Message  string
	NewTry   bool // this RUNNING starts a new attempt (the first one always does)
	SameSeq  bool // reuse the previous seq (a conflicting re-send); last step only
	NodeName string
}

// History makes the rows of one event that is queued at start and then
// takes the steps, with deterministic trace and span IDs.
func History(keys event.Keys, invokeType string, start time.Time, steps ...Step) []Row {
	h := fnv.New64a()
	h.Write([]byte(keys.Tenant + "\x00" + keys.RequestID))
	seed := h.Sum64()
	var trace [16]byte
	binary.BigEndian.PutUint64(trace[:8], seed)
	binary.BigEndian.PutUint64(trace[8:], seed^0x9e3779b97f4a7c15|1)

	rows := []Row{}
	at := start
	var seq uint64
	var attempt uint32
	from := event.StateNone
	all := append([]Step{{To: event.StateQueued}}, steps...)
	for i, s := range all {
		at = at.Add(s.After)
		rowFrom := from
		if s.SameSeq && i > 0 {
			rowFrom = rows[len(rows)-1].From
		} else {
			seq++
		}
		if s.To == event.StateRunning && (attempt == 0 || s.NewTry) {
			attempt++
		}
		node := s.NodeName
		if node == "" {
			node = "node-1"
		}
		var span [8]byte
		binary.BigEndian.PutUint64(span[:], seed^(seq*0x100000001b3)|1)
		r := Row{
			Keys: keys, Seq: seq, Attempt: attempt, From: rowFrom, To: s.To, Time: at,
			ErrorCode: s.Code, ErrorMessage: s.Message, InvokeType: invokeType, Node: node,
			TraceID: trace, SpanID: span,
		}
		// As the plugin's spans carry them: the time since the previous
		// transition, and the event's age on its terminal transition.
		if i > 0 && s.After > 0 {
			r.FromStateNS = uint64(s.After)
		}
		if s.To.Terminal() && at.After(start) {
			r.EventNS = uint64(at.Sub(start))
		}
		rows = append(rows, r)
		from = s.To
	}
	return rows
}

func namedArgs(kv ...string) []any {
	out := make([]any, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, clickhouse.Named(kv[i], kv[i+1]))
	}
	return out
}
