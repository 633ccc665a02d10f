// Package queries runs statustrace's read side: event lookups, lists,
// statistics and exports, from the SQL in sql/*.sql (see render.go), with
// every value bound as a ClickHouse query parameter. It reads the tables
// internal/schema names, only inside the retention window
// (schema.RetentionCutoffExpr) and only within the caller's Scope.
//
// The connection's default database must be the statustrace database: the
// retention cutoff reads the unqualified settings table (New checks it).
package queries

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/statustrace/statustrace/internal/schema"
)

// Event is the current status of one event.
type Event struct {
	Tenant       string     `json:"tenant"`
	Namespace    string     `json:"namespace"`
	Function     string     `json:"function"`
	Qualifier    string     `json:"qualifier"`
	RequestID    string     `json:"request_id"`
	Status       string     `json:"status"` // public: RUNNING, FINISHED, FAILED, ABORTED
	State        string     `json:"state"`  // detailed state
	InvokeType   string     `json:"invoke_type"`
	Attempts     uint32     `json:"attempts"`
	LastSeq      uint64     `json:"last_seq"`
	StartTime    time.Time  `json:"start_time"`
	EndTime      *time.Time `json:"end_time"` // nil while running
	LastTime     time.Time  `json:"last_time"`
	ErrorCode    string     `json:"error_code,omitempty"`
	ErrorMessage string     `json:"error_message,omitempty"`
	Node         string     `json:"node,omitempty"`
	TraceID      string     `json:"trace_id,omitempty"` // hex; joins otel_traces.TraceId
}

// Transition is one state change in an event's timeline.
type Transition struct {
	Seq          uint64        `json:"seq"`
	Attempt      uint32        `json:"attempt"`
	FromState    string        `json:"from_state"`
	ToState      string        `json:"to_state"`
	Time         time.Time     `json:"time"`
	InState      time.Duration `json:"in_state_ns"` // time spent in FromState; 0 if the previous transition is unknown
	ErrorCode    string        `json:"error_code,omitempty"`
	ErrorMessage string        `json:"error_message,omitempty"`
	Node         string        `json:"node,omitempty"`
	SpanID       string        `json:"span_id,omitempty"`
}

// EventDetail is an event with its timeline.
type EventDetail struct {
	Event
	Transitions uint64       `json:"transitions"` // distinct transitions seen
	Errors      uint64       `json:"errors"`      // transitions that carried an error
	Timeline    []Transition `json:"timeline"`
}

// Page is one page of a list.
type Page struct {
	Events     []Event `json:"events"`
	Total      uint64  `json:"total"`                 // events matching the filter, all pages
	NextCursor string  `json:"next_cursor,omitempty"` // set when the page is full
}

// Conn is what the package needs from a ClickHouse connection; clickhouse-go's
// driver.Conn has it.
type Conn interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
	Exec(ctx context.Context, query string, args ...any) error
}

// Store runs the queries on one connection.
type Store struct {
	conn Conn
}

// New checks that conn's default database holds the statustrace tables and
// returns a Store.
func New(ctx context.Context, conn Conn) (*Store, error) {
	var n uint64
	err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name IN ({t1:String}, {t2:String}, {t3:String}, {t4:String})",
		clickhouse.Named("t1", schema.Transitions), clickhouse.Named("t2", schema.Events),
		clickhouse.Named("t3", schema.Stats), clickhouse.Named("t4", schema.Settings)).Scan(&n)
	if err != nil {
		return nil, fmt.Errorf("check statustrace tables: %w", err)
	}
	if n != 4 {
		return nil, fmt.Errorf("the connection's default database lacks the statustrace tables (found %d of 4): run `statustrace migrate` or select the database in the DSN", n)
	}
	return &Store{conn: conn}, nil
}

// NewUnchecked returns a Store without checking the database (tests that
// create the schema later, tools).
func NewUnchecked(conn Conn) *Store { return &Store{conn: conn} }

// args builds the named parameters of a query. Values go to ClickHouse as
// query parameters, never into the SQL text.
type args []any

func (a args) add(name string, v any) args { return append(a, clickhouse.Named(name, v)) }

func scopeArgs(sc Scope) args {
	ns := sc.Namespaces
	if ns == nil {
		ns = []string{}
	}
	return args{clickhouse.Named("tenant", sc.Tenant), clickhouse.Named("namespaces", ns)}
}

func keyArgs(a args, namespace, function, qualifier string) args {
	return a.add("namespace", namespace).add("function", function).add("qualifier", qualifier)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func fromNs(ns int64) time.Time {
	return time.Unix(0, ns).UTC()
}

// traceHex drops the all-zero trace ID of an event without a trace.
func traceHex(h string) string {
	if strings.Trim(h, "0") == "" {
		return ""
	}
	return h
}

// Get returns an event with its timeline, or ErrNotFound. One query
// (event_get) returns the timeline, each row carrying the event's columns as
// event_status computes them.
func (s *Store) Get(ctx context.Context, sc Scope, requestID string) (*EventDetail, error) {
	if err := sc.validate(); err != nil {
		return nil, err
	}
	if requestID == "" {
		return nil, paramErr("request_id", "required")
	}
	rows, err := s.conn.Query(ctx, compiled.sql["event_get"], scopeArgs(sc).add("request_id", requestID)...)
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	defer rows.Close()
	var d *EventDetail
	for rows.Next() {
		var (
			e                      EventDetail
			startNs, endNs, lastNs int64
			trace                  string
			r                      Transition
			timeNs                 int64
			inState                uint64
		)
		if err := rows.Scan(&e.Tenant, &e.Namespace, &e.Function, &e.Qualifier, &e.RequestID, &e.Status, &e.State, &e.InvokeType,
			&e.Attempts, &e.LastSeq, &startNs, &endNs, &lastNs, &e.ErrorCode, &e.ErrorMessage, &e.Node, &trace,
			&e.Transitions, &e.Errors,
			&r.Seq, &r.Attempt, &r.FromState, &r.ToState, &timeNs, &inState, &r.ErrorCode, &r.ErrorMessage, &r.Node, &r.SpanID); err != nil {
			return nil, fmt.Errorf("event row: %w", err)
		}
		if d == nil {
			e.Event = eventFromNs(e.Event, startNs, endNs, lastNs, trace)
			e.Timeline = make([]Transition, 0, e.Transitions)
			d = &e
		}
		r.Time, r.InState = fromNs(timeNs), time.Duration(inState)
		d.Timeline = append(d.Timeline, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("event rows: %w", err)
	}
	if d == nil {
		return nil, ErrNotFound
	}
	return d, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func listArgs(sc Scope, f *ListFilter) args {
	a := keyArgs(scopeArgs(sc), f.Namespace, f.Function, f.Qualifier)
	return a.add("request_id", f.RequestID).
		add("invoke_types", nonNil(f.InvokeTypes)).
		add("statuses", nonNil(f.Statuses)).
		add("start_from_ms", ms(f.Start.From)).add("start_to_ms", ms(f.Start.To)).
		add("end_from_ms", ms(f.End.From)).add("end_to_ms", ms(f.End.To))
}

// scanEvent reads a row of sql/_event_columns.sql.
func scanEvent(rows driver.Rows) (Event, error) {
	var (
		e                      Event
		startNs, endNs, lastNs int64
		trace                  string
	)
	err := rows.Scan(&e.Tenant, &e.Namespace, &e.Function, &e.Qualifier, &e.RequestID, &e.Status, &e.State, &e.InvokeType,
		&e.Attempts, &e.LastSeq, &startNs, &endNs, &lastNs, &e.ErrorCode, &e.ErrorMessage, &e.Node, &trace)
	if err != nil {
		return e, err
	}
	return eventFromNs(e, startNs, endNs, lastNs, trace), nil
}

// eventFromNs fills e's times (Int64 ns, end 0 while running) and trace ID.
func eventFromNs(e Event, startNs, endNs, lastNs int64, trace string) Event {
	e.StartTime, e.LastTime = fromNs(startNs), fromNs(lastNs)
	if endNs != 0 {
		t := fromNs(endNs)
		e.EndTime = &t
	}
	e.TraceID = traceHex(trace)
	return e
}

func sortNs(e Event, by OrderBy) int64 {
	if by == OrderByEndTime {
		if e.EndTime == nil {
			return 0
		}
		return e.EndTime.UnixNano()
	}
	return e.StartTime.UnixNano()
}

// List returns one page of events and the total number that match.
func (s *Store) List(ctx context.Context, sc Scope, f ListFilter) (*Page, error) {
	if err := sc.validate(); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	a := listArgs(sc, &f)
	var after cursor
	afterSet := uint8(0)
	if f.Cursor != "" {
		after, _ = decodeCursor(f.Cursor, f.OrderBy, f.Desc) // validated above
		afterSet = 1
	}
	pa := a.add("after_set", afterSet).add("after_ns", after.Ns).add("after_id", after.ID).
		add("limit", uint32(f.Limit)).add("offset", f.Offset)
	rows, err := s.conn.Query(ctx, compiled.page[pageKey{f.OrderBy, f.Desc}], pa...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	p := &Page{Events: []Event{}}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("list events row: %w", err)
		}
		p.Events = append(p.Events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events rows: %w", err)
	}
	if err := s.conn.QueryRow(ctx, compiled.sql["event_count"], a...).Scan(&p.Total); err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	if len(p.Events) == f.Limit {
		last := p.Events[len(p.Events)-1]
		p.NextCursor = encodeCursor(cursor{By: f.OrderBy, Desc: f.Desc, Ns: sortNs(last, f.OrderBy), ID: last.RequestID})
	}
	return p, nil
}

// Count returns the number of events that match f (its paging fields are
// ignored).
func (s *Store) Count(ctx context.Context, sc Scope, f ListFilter) (uint64, error) {
	if err := sc.validate(); err != nil {
		return 0, err
	}
	f.Cursor, f.Offset = "", 0
	if err := f.Validate(); err != nil {
		return 0, err
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, compiled.sql["event_count"], listArgs(sc, &f)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	return n, nil
}

// ExportEvents calls fn for every event that matches f, ordered as f asks
// (offset, limit and cursor are ignored). It streams: memory does not grow
// with the number of events.
func (s *Store) ExportEvents(ctx context.Context, sc Scope, f ListFilter, fn func(Event) error) error {
	if err := sc.validate(); err != nil {
		return err
	}
	f.Cursor, f.Offset, f.Limit = "", 0, 0
	if err := f.Validate(); err != nil {
		return err
	}
	rows, err := s.conn.Query(ctx, compiled.export[pageKey{f.OrderBy, f.Desc}], listArgs(sc, &f)...)
	if err != nil {
		return fmt.Errorf("export events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return fmt.Errorf("export events row: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export events rows: %w", err)
	}
	return nil
}

// TransitionRecord is one transition with its event's keys, as exported.
type TransitionRecord struct {
	Tenant       string    `json:"tenant"`
	Namespace    string    `json:"namespace"`
	Function     string    `json:"function"`
	Qualifier    string    `json:"qualifier"`
	RequestID    string    `json:"request_id"`
	Seq          uint64    `json:"seq"`
	Attempt      uint32    `json:"attempt"`
	FromState    string    `json:"from_state"`
	ToState      string    `json:"to_state"`
	Time         time.Time `json:"time"`
	ErrorCode    string    `json:"error_code,omitempty"`
	ErrorMessage string    `json:"error_message,omitempty"`
	InvokeType   string    `json:"invoke_type"`
	Node         string    `json:"node,omitempty"`
	TraceID      string    `json:"trace_id,omitempty"`
	SpanID       string    `json:"span_id,omitempty"`
}

func windowArgs(sc Scope, namespace, function, qualifier string, w TimeRange) args {
	return keyArgs(scopeArgs(sc), namespace, function, qualifier).
		add("from_ms", ms(w.From)).add("to_ms", ms(w.To))
}

// CountTransitions returns how many transitions ExportTransitions would
// write (for a progress bar).
func (s *Store) CountTransitions(ctx context.Context, sc Scope, w WindowFilter) (uint64, error) {
	if err := sc.validate(); err != nil {
		return 0, err
	}
	if err := w.Validate(); err != nil {
		return 0, err
	}
	var n uint64
	err := s.conn.QueryRow(ctx, "SELECT count() FROM ("+compiled.sql["transitions_window"]+")",
		windowArgs(sc, w.Namespace, w.Function, w.Qualifier, w.Window)...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count transitions: %w", err)
	}
	return n, nil
}

// ExportTransitions calls fn for every transition in the window, grouped by
// event and ordered by seq, deduplicated. It streams.
func (s *Store) ExportTransitions(ctx context.Context, sc Scope, w WindowFilter, fn func(TransitionRecord) error) error {
	if err := sc.validate(); err != nil {
		return err
	}
	if err := w.Validate(); err != nil {
		return err
	}
	rows, err := s.conn.Query(ctx, compiled.sql["transitions_export"], windowArgs(sc, w.Namespace, w.Function, w.Qualifier, w.Window)...)
	if err != nil {
		return fmt.Errorf("export transitions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r      TransitionRecord
			timeNs int64
		)
		if err := rows.Scan(&r.Tenant, &r.Namespace, &r.Function, &r.Qualifier, &r.RequestID, &r.Seq, &r.Attempt, &r.FromState, &r.ToState,
			&timeNs, &r.ErrorCode, &r.ErrorMessage, &r.InvokeType, &r.Node, &r.TraceID, &r.SpanID); err != nil {
			return fmt.Errorf("export transitions row: %w", err)
		}
		r.Time = fromNs(timeNs)
		r.TraceID = traceHex(r.TraceID)
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export transitions rows: %w", err)
	}
	return nil
}
