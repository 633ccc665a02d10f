// Package rows turns status spans into typed, columnar transition rows.
//
// It trusts nothing about its input: spans can come from any OTLP client.
// A span that cannot become a correct row, or whose row ClickHouse would
// never keep (older than the retention, too far in the future, seq 0), is
// dropped with a reason; a free-text field that is too long or not valid
// UTF-8 is repaired (truncated / sanitized) and counted. Keys are never
// repaired: two different request IDs must never merge into one event.
// Nothing here panics on any input (see FuzzMapSpan).
package rows

import (
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/internal/timewindow"
)

// DropReason says why a status span was not written.
type DropReason uint8

// Drop reasons. They are metric attribute values: keep them stable.
const (
	DropNone             DropReason = iota
	DropMissingAttribute            // a required attribute is absent or empty
	DropWrongType                   // an attribute has a type that cannot be read
	DropUnknownState                // from/to state is not an event.State name
	DropKeyTooLong                  // an event key exceeds event.MaxKeyBytes
	DropBadTimestamp                // no end time, later than now + max_future_skew, or past what the TTL arithmetic holds
	DropUnknownRole                 // span_role is neither transition nor event
	DropExpired                     // older than the retention: the TTL would drop it, no reader would see it
	DropInvalidKey                  // an event key is not valid UTF-8 (never repaired: it could merge two events)
	DropInvalidSeq                  // seq < 1 (the host numbers transitions from 1)
	DropRejected                    // ClickHouse refused the row itself (a permanent error for it alone)
	NumDropReasons                  // how many reasons there are (index 0 unused)
)

var dropNames = [NumDropReasons]string{"", "missing_attribute", "wrong_type", "unknown_state", "key_too_long", "bad_timestamp", "unknown_role",
	"expired", "invalid_key", "invalid_seq", "rejected"}

// DropReasons lists every reason, for metrics and documentation.
func DropReasons() []DropReason {
	out := make([]DropReason, 0, NumDropReasons-1)
	for r := DropMissingAttribute; r < NumDropReasons; r++ {
		out = append(out, r)
	}
	return out
}

func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// Field names a repaired field (metric attribute values).
type Field uint8

const (
	FieldErrorMessage Field = iota
	FieldErrorCode
	FieldInvokeType
	FieldNode
	NumFields // how many fields can be repaired
)

var fieldNames = [NumFields]string{"error_message", "error_code", "invoke_type", "node"}

func (f Field) String() string {
	if f < NumFields {
		return fieldNames[f]
	}
	return "unknown"
}

// Stats counts what one Map call did.
type Stats struct {
	Rows      int                        // rows appended
	Ignored   int                        // spans that are not status transition spans
	Dropped   [NumDropReasons]int        // status spans dropped, by reason (index 0 unused)
	Truncated [NumFields]int             // fields cut to their limit
	Sanitized [NumFields]int             // fields with invalid UTF-8 replaced
	Example   [NumDropReasons]DropDetail // one example per drop reason, for logs
}

// DropDetail describes one dropped span for a log line. Values are already
// sanitized and short.
type DropDetail struct {
	Attribute string
	RequestID string
}

// TotalDropped sums Dropped.
func (s *Stats) TotalDropped() int {
	n := 0
	for _, d := range s.Dropped {
		n += d
	}
	return n
}

// Columns holds rows column by column, in InsertColumns order, ready for
// clickhouse-go's columnar batch append. Reuse it with Reset. Each field is
// named once, in the columns table below, which every list derives from.
type Columns struct {
	Tenant, Namespace, Function, Qualifier, RequestID []string
	Seq                                               []uint64
	Attempt                                           []uint32
	FromState, ToState                                []string
	Time                                              []time.Time
	ErrorCode, ErrorMessage, InvokeType, Node         []string
	TraceID, SpanID                                   []string // raw bytes (16 and 8)
	DurationKey                                       []uint32

	// ids backs TraceID and SpanID: one allocation per batch, not per row.
	ids []byte
	// rowIDs is Append's scratch for the row being added (a field, so that
	// handing it to the column functions allocates nothing).
	rowIDs rowIDs
	// part holds the second half of a batch that Map splits between two
	// goroutines, until it is appended here; reused with c.
	part *Columns
	// boxes and interned back the LowCardinality columns Column hands out
	// (see boxed), one of each per column so that columns can be prepared
	// side by side.
	boxes    [numColumns][]any
	interned [numColumns]map[string]any
}

// numColumns is len(columns), written out because Columns' arrays are sized
// by it and columns refers to Columns; the index below does not compile
// unless the two are equal.
const numColumns = 17

var _ = [1]struct{}{}[len(columns)-numColumns]

// rowIDs are a row's IDs as strings viewing Columns.ids (see Append).
type rowIDs struct{ trace, span string }

// columns is the one table of the insert's columns: name (from
// internal/schema), ClickHouse type, the Columns field and the Row value.
// InsertColumns, Slices, Slice, Reset and Append all walk it.
var columns = [...]colDesc{
	col(schema.ColTenant, "LowCardinality(String)", func(c *Columns) *[]string { return &c.Tenant }, func(r *Row, _ *rowIDs) string { return r.Tenant }),
	col(schema.ColNamespace, "LowCardinality(String)", func(c *Columns) *[]string { return &c.Namespace }, func(r *Row, _ *rowIDs) string { return r.Namespace }),
	col(schema.ColFunction, "LowCardinality(String)", func(c *Columns) *[]string { return &c.Function }, func(r *Row, _ *rowIDs) string { return r.Function }),
	col(schema.ColQualifier, "LowCardinality(String)", func(c *Columns) *[]string { return &c.Qualifier }, func(r *Row, _ *rowIDs) string { return r.Qualifier }),
	col(schema.ColRequestID, "String", func(c *Columns) *[]string { return &c.RequestID }, func(r *Row, _ *rowIDs) string { return r.RequestID }),
	col(schema.ColSeq, "UInt64", func(c *Columns) *[]uint64 { return &c.Seq }, func(r *Row, _ *rowIDs) uint64 { return r.Seq }),
	col(schema.ColAttempt, "UInt32", func(c *Columns) *[]uint32 { return &c.Attempt }, func(r *Row, _ *rowIDs) uint32 { return r.Attempt }),
	col(schema.ColFromState, "LowCardinality(String)", func(c *Columns) *[]string { return &c.FromState }, func(r *Row, _ *rowIDs) string { return r.From.String() }),
	col(schema.ColToState, "LowCardinality(String)", func(c *Columns) *[]string { return &c.ToState }, func(r *Row, _ *rowIDs) string { return r.To.String() }),
	col(schema.ColTime, "DateTime64(9, 'UTC')", func(c *Columns) *[]time.Time { return &c.Time }, func(r *Row, _ *rowIDs) time.Time { return time.Unix(0, r.TimeUnixNano).UTC() }),
	col(schema.ColErrorCode, "LowCardinality(String)", func(c *Columns) *[]string { return &c.ErrorCode }, func(r *Row, _ *rowIDs) string { return r.ErrorCode }),
	col(schema.ColErrorMessage, "String", func(c *Columns) *[]string { return &c.ErrorMessage }, func(r *Row, _ *rowIDs) string { return r.ErrorMessage }),
	col(schema.ColInvokeType, "LowCardinality(String)", func(c *Columns) *[]string { return &c.InvokeType }, func(r *Row, _ *rowIDs) string { return r.InvokeType }),
	col(schema.ColNode, "LowCardinality(String)", func(c *Columns) *[]string { return &c.Node }, func(r *Row, _ *rowIDs) string { return r.Node }),
	col(schema.ColTraceID, "FixedString(16)", func(c *Columns) *[]string { return &c.TraceID }, func(_ *Row, id *rowIDs) string { return id.trace }),
	col(schema.ColSpanIDOverride, "FixedString(8)", func(c *Columns) *[]string { return &c.SpanID }, func(_ *Row, id *rowIDs) string { return id.span }),
	col(schema.ColDurationKey, "UInt32", func(c *Columns) *[]uint32 { return &c.DurationKey }, func(r *Row, _ *rowIDs) uint32 { return r.DurationKey() }),
}

// colDesc is one column's operations, typed once by col.
type colDesc struct {
	Column
	slice  func(c *Columns) any                  // the column slice (for the driver)
	sub    func(dst, src *Columns, lo, hi int)   // dst's column = src's [lo, hi)
	reset  func(c *Columns)                      // clear and truncate, keeping memory
	grow   func(c *Columns, n int)               // room for n more rows
	concat func(dst, src *Columns)               // append src's column to dst's
	append func(c *Columns, r *Row, ids *rowIDs) // add r's value
	field  func(c *Columns) any                  // pointer to the field (tests)
	// lowCard is a LowCardinality(String) column's strings (nil for the
	// others): Slices hands them to the driver boxed.
	lowCard func(c *Columns) []string
}

func col[T any](name, typ string, field func(*Columns) *[]T, value func(*Row, *rowIDs) T) colDesc {
	var lowCard func(c *Columns) []string
	if f, ok := any(field).(func(*Columns) *[]string); ok && strings.HasPrefix(typ, "LowCardinality(") {
		lowCard = func(c *Columns) []string { return *f(c) }
	}
	return colDesc{
		lowCard: lowCard,
		Column:  Column{name, typ},
		slice:   func(c *Columns) any { return *field(c) },
		sub:     func(dst, src *Columns, lo, hi int) { *field(dst) = (*field(src))[lo:hi] },
		reset: func(c *Columns) {
			f := field(c)
			// Strings point into the exported pdata, which must not stay
			// reachable from a pool.
			clear(*f)
			*f = (*f)[:0]
		},
		grow:   func(c *Columns, n int) { *field(c) = slices.Grow(*field(c), n) },
		concat: func(dst, src *Columns) { *field(dst) = append(*field(dst), *field(src)...) },
		append: func(c *Columns, r *Row, ids *rowIDs) {
			f := field(c)
			*f = append(*f, value(r, ids))
		},
		field: func(c *Columns) any { return field(c) },
	}
}

// Column is a column of Insert: its name (from internal/schema) and type.
type Column struct{ Name, Type string }

// InsertColumns lists the columns Columns fills, in order.
var InsertColumns = func() []Column {
	out := make([]Column, len(columns))
	for i, d := range columns {
		out[i] = d.Column
	}
	return out
}()

// Len is the number of rows.
func (c *Columns) Len() int { return len(c.RequestID) }

// Slice returns rows [lo, hi) as their own Columns, sharing c's memory (a
// view for inserting part of a batch; never Append to or Reset it).
func (c *Columns) Slice(lo, hi int) *Columns {
	out := &Columns{}
	for i := range columns {
		columns[i].sub(out, c, lo, hi)
	}
	return out
}

// Reset empties c, keeping its memory.
func (c *Columns) Reset() {
	for i := range columns {
		columns[i].reset(c)
	}
	c.ids = nil // strings handed out point into it: never overwrite
	if c.part != nil {
		c.part.Reset()
	}
	for i := range c.boxes {
		clear(c.boxes[i]) // the boxed strings point into pdata too
		c.boxes[i] = c.boxes[i][:0]
		clear(c.interned[i])
	}
}

// Slices returns the column slices in InsertColumns order, for the
// driver's columnar append (see Column).
func (c *Columns) Slices() []any {
	out := make([]any, len(columns))
	for i := range columns {
		out[i] = c.Column(i)
	}
	return out
}

// Column returns column i (InsertColumns order) for the driver's columnar
// append: a LowCardinality column as []any (see boxed), the others as
// their typed slices. Calls for different columns may run at once (they
// share nothing), so the columns of a batch can be handed over side by
// side.
func (c *Columns) Column(i int) any {
	if columns[i].lowCard != nil {
		return c.boxed(i, columns[i].lowCard(c))
	}
	return columns[i].slice(c)
}

// boxed returns s as interface values, one shared *string per distinct
// string. clickhouse-go appends a LowCardinality column row by row through
// reflection and boxes each string it is given (an allocation per row and
// column: nine per transition); handed boxes, it allocates none and takes
// about 30% less time (BenchmarkDriverAppend). It keys its dictionary by
// the boxed value, twice per row: a pointer hashes and compares in one
// word where a string is hashed whole, another 8-10% of the driver's
// append; one pointer per value keeps each value in the dictionary once.
// Consecutive rows mostly repeat a value, so the last one is checked
// before the map.
func (c *Columns) boxed(i int, s []string) []any {
	if c.interned[i] == nil {
		c.interned[i] = make(map[string]any)
	}
	interned := c.interned[i]
	out := slices.Grow(c.boxes[i][:0], len(s))
	var last string
	var box any
	for _, v := range s {
		if box == nil || v != last {
			b, ok := interned[v]
			if !ok {
				p := new(string) // not &v: that would move v to the heap on every row
				*p = v
				b = p
				interned[v] = b
			}
			last, box = v, b
		}
		out = append(out, box)
	}
	c.boxes[i] = out
	return out
}

// Row is one transition, the unit Map produces.
type Row struct {
	event.Keys
	Seq          uint64
	Attempt      uint32
	From, To     event.State
	TimeUnixNano int64
	ErrorCode    string
	ErrorMessage string
	InvokeType   string
	Node         string
	TraceID      [16]byte
	SpanID       [8]byte
	// FromStateNS is how long the event was in From (the span's start to
	// its end), EventNS on a terminal transition how long since the event's
	// first transition (the plugin's event start attribute); 0: unknown.
	FromStateNS uint64
	EventNS     uint64
}

// DurationKey is the row's duration key (schema.DurationKey), what the
// insert stores of FromStateNS and EventNS (schema version 12).
func (r *Row) DurationKey() uint32 {
	return schema.DurationKey(schema.StepCode(r.From, r.To), r.FromStateNS, r.To.Terminal(), r.EventNS)
}

// IsStatusScope reports whether spans of this scope may be status spans.
func IsStatusScope(scope pcommon.InstrumentationScope) bool {
	return scope.Name() == event.ScopeName
}

// Map appends the rows of every status transition span in td to c and
// returns what it did. Spans of other scopes and the root "event" spans are
// ignored. A transition whose time falls outside window (fixed at one
// instant for the whole batch) is dropped as expired or bad_timestamp.
func Map(td ptrace.Traces, c *Columns, window timewindow.Bounds) Stats {
	var st Stats
	var spans []ptrace.SpanSlice
	n := 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			if !IsStatusScope(ss.Scope()) {
				st.Ignored += ss.Spans().Len()
				continue
			}
			spans = append(spans, ss.Spans())
			n += ss.Spans().Len()
		}
	}
	// Room for every row at once: growing column by column, batch after
	// batch, was a good part of the work.
	for i := range columns {
		columns[i].grow(c, n)
	}
	if n < parallelMin || runtime.GOMAXPROCS(0) < 2 {
		mapRange(spans, 0, n, c, &st, window)
		return st
	}
	// A large batch is mapped in two halves side by side: the insert waits
	// for the whole batch, and mapping is most of the exporter's own time.
	// The second half's rows follow the first's, as Map alone would order
	// them (SplitAt relies on that order).
	if c.part == nil {
		c.part = new(Columns)
	}
	half := n / 2
	for i := range columns {
		columns[i].grow(c.part, n-half)
	}
	var st2 Stats
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		mapRange(spans, half, n, c.part, &st2, window)
	}()
	mapRange(spans, 0, half, c, &st, window)
	wg.Wait()
	for i := range columns {
		columns[i].concat(c, c.part)
	}
	st.add(&st2)
	return st
}

// parallelMin is the batch size from which Map splits the work: below it a
// goroutine costs more than it saves.
const parallelMin = 4096

// mapRange maps the status spans numbered [from, to) across spans (in
// order) into c, counting into st.
func mapRange(spans []ptrace.SpanSlice, from, to int, c *Columns, st *Stats, window timewindow.Bounds) {
	var r Row
	at := 0
	for _, ss := range spans {
		lo, hi := max(from-at, 0), min(to-at, ss.Len())
		at += ss.Len()
		for k := lo; k < hi; k++ {
			reason, status, detail := MapSpan(ss.At(k), &r, st, window)
			switch {
			case !status:
				st.Ignored++
			case reason != DropNone:
				st.Dropped[reason]++
				st.Example[reason] = detail
			default:
				c.Append(&r)
				st.Rows++
			}
		}
		if at >= to {
			return
		}
	}
}

// add adds the counts of o, which mapped the spans after s's, to s; the
// example of a reason is the last one, as in one pass.
func (s *Stats) add(o *Stats) {
	s.Rows += o.Rows
	s.Ignored += o.Ignored
	for i := range s.Dropped {
		s.Dropped[i] += o.Dropped[i]
		if o.Example[i] != (DropDetail{}) {
			s.Example[i] = o.Example[i]
		}
	}
	for i := range s.Truncated {
		s.Truncated[i] += o.Truncated[i]
		s.Sanitized[i] += o.Sanitized[i]
	}
}

// Append adds r as the last row.
func (c *Columns) Append(r *Row) {
	if cap(c.ids)-len(c.ids) < 24 {
		// A fresh block: earlier strings keep pointing into the old one.
		c.ids = make([]byte, 0, max(24*1024, 2*cap(c.ids)))
	}
	n := len(c.ids)
	c.ids = append(c.ids, r.TraceID[:]...)
	// The plugin's span IDs are derived from (request_id, seq), and the schema
	// recomputes them: store zero bytes (free after compression) for those.
	override := r.SpanID
	if override == event.TransitionSpanID(r.RequestID, r.Seq) {
		override = [8]byte{}
	}
	c.ids = append(c.ids, override[:]...)
	b := c.ids[n : n+24 : n+24]
	c.rowIDs = rowIDs{trace: idString(b[:16]), span: idString(b[16:])}
	for i := range columns {
		columns[i].append(c, r, &c.rowIDs)
	}
}

// idString views b as a string without copying. b is never written again
// (Append only appends to fresh capacity), so the string stays immutable.
// An all-zero ID becomes "", which the driver writes as zero bytes too.
func idString(b []byte) string {
	for _, x := range b {
		if x != 0 {
			return unsafe.String(&b[0], len(b))
		}
	}
	return ""
}

// MapSpan reads one span into r. status is false when the span is not a
// status transition span (wrong scope is the caller's check; here: the root
// "event" span). When reason is not DropNone the span must be dropped and
// detail says why. Repairs are counted in st.
func MapSpan(span ptrace.Span, r *Row, st *Stats, window timewindow.Bounds) (reason DropReason, status bool, detail DropDetail) {
	*r = Row{}
	var (
		role                      string
		haveRole, haveSeq, haveTo bool
		fromName, toName          string
		eventStart                pcommon.Value
		haveEventStart            bool
	)
	// drop is the outcome for a span dropped for attr. The request ID in
	// the detail is made fit for a log line only here: most spans are not
	// dropped, and doing it for each was a tenth of mapping.
	drop := func(rsn DropReason, attr string) (DropReason, bool, DropDetail) {
		return rsn, true, DropDetail{attr, shortForLog(r.RequestID)}
	}
	bad := func(rsn DropReason, attr string) {
		if reason == DropNone {
			reason, detail.Attribute = rsn, attr
		}
	}
	for k, v := range span.Attributes().All() {
		switch k {
		case event.AttrSpanRole:
			role, haveRole = str(v, &reason, &detail, k), true
		case event.AttrTenant:
			r.Tenant = str(v, &reason, &detail, k)
		case event.AttrNamespace:
			r.Namespace = str(v, &reason, &detail, k)
		case event.AttrFunction:
			r.Function = str(v, &reason, &detail, k)
		case event.AttrQualifier:
			r.Qualifier = str(v, &reason, &detail, k)
		case event.AttrRequestID:
			r.RequestID = str(v, &reason, &detail, k)
		case event.AttrSeq:
			n, ok := uintValue(v, math.MaxInt64)
			if !ok {
				bad(DropWrongType, k)
			}
			r.Seq, haveSeq = n, true
		case event.AttrAttempt:
			n, ok := uintValue(v, math.MaxUint32)
			if !ok {
				bad(DropWrongType, k)
			}
			r.Attempt = uint32(n)
		case event.AttrFromState:
			fromName = str(v, &reason, &detail, k)
		case event.AttrToState:
			toName, haveTo = str(v, &reason, &detail, k), true
		case event.AttrErrorCode:
			r.ErrorCode = text(v)
		case event.AttrErrorMsg:
			r.ErrorMessage = text(v)
		case event.AttrInvokeType:
			r.InvokeType = text(v)
		case event.AttrNode:
			r.Node = text(v)
		case event.AttrEventStartUnixNano:
			eventStart, haveEventStart = v, true
		}
	}
	if haveRole && role == event.RoleEvent {
		return DropNone, false, DropDetail{} // root spans go to otel_traces only
	}
	if reason != DropNone {
		return drop(reason, detail.Attribute)
	}
	switch {
	case !haveRole:
		return drop(DropMissingAttribute, event.AttrSpanRole)
	case role != event.RoleTransition:
		return drop(DropUnknownRole, event.AttrSpanRole)
	}

	// Required keys, then their limits. Keys are never truncated: a cut
	// request_id could merge two events.
	for _, kv := range [...]struct {
		name string
		v    *string
		req  bool
	}{
		{event.AttrTenant, &r.Tenant, true},
		{event.AttrRequestID, &r.RequestID, true},
		{event.AttrFunction, &r.Function, true},
		{event.AttrNamespace, &r.Namespace, false},
		{event.AttrQualifier, &r.Qualifier, false},
	} {
		if kv.req && *kv.v == "" {
			return drop(DropMissingAttribute, kv.name)
		}
		if !utf8.ValidString(*kv.v) {
			return drop(DropInvalidKey, kv.name)
		}
		if len(*kv.v) > event.MaxKeyBytes {
			return drop(DropKeyTooLong, kv.name)
		}
	}
	if !haveSeq {
		return drop(DropMissingAttribute, event.AttrSeq)
	}
	if r.Seq < 1 {
		return drop(DropInvalidSeq, event.AttrSeq)
	}
	if !haveTo || toName == "" {
		return drop(DropMissingAttribute, event.AttrToState)
	}
	var err error
	if r.To, err = event.ParseState(toName); err != nil || !r.To.Valid() {
		return drop(DropUnknownState, event.AttrToState)
	}
	if r.From, err = event.ParseState(fromName); err != nil {
		return drop(DropUnknownState, event.AttrFromState)
	}

	end := span.EndTimestamp()
	if end == 0 || uint64(end) > math.MaxInt64 {
		return drop(DropBadTimestamp, "end_time")
	}
	switch window.Check(int64(end)) {
	case timewindow.OK:
	case timewindow.Expired:
		return drop(DropExpired, "end_time")
	default:
		return drop(DropBadTimestamp, "end_time")
	}
	r.TimeUnixNano = int64(end)

	r.ErrorMessage = repair(r.ErrorMessage, event.MaxErrorMessageBytes, FieldErrorMessage, st)
	r.ErrorCode = repair(r.ErrorCode, event.MaxKeyBytes, FieldErrorCode, st)
	r.InvokeType = repair(r.InvokeType, event.MaxKeyBytes, FieldInvokeType, st)
	r.Node = repair(r.Node, event.MaxKeyBytes, FieldNode, st)
	r.TraceID = [16]byte(span.TraceID())
	r.SpanID = [8]byte(span.SpanID())
	// Durations are extras: one that makes no sense is unknown, never a
	// reason to drop the transition.
	r.FromStateNS, r.EventNS = 0, 0
	if start := span.StartTimestamp(); r.From != event.StateNone && start > 0 && start < end {
		r.FromStateNS = uint64(end - start)
	}
	if haveEventStart && r.To.Terminal() {
		if es, ok := uintValue(eventStart, uint64(end)); ok && es > 0 && es < uint64(end) {
			r.EventNS = uint64(end) - es
		}
	}
	return DropNone, true, DropDetail{}
}

// str reads a string attribute; another type marks the span for dropping.
func str(v pcommon.Value, reason *DropReason, detail *DropDetail, attr string) string {
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	if *reason == DropNone {
		*reason, detail.Attribute = DropWrongType, attr
	}
	return ""
}

// text reads an optional free-text attribute. A non-string value is kept in
// its string form (an int error code is still an error code); maps, slices
// and bytes become their JSON/base64 form and are then bounded by repair.
func text(v pcommon.Value) string {
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	if v.Type() == pcommon.ValueTypeEmpty {
		return ""
	}
	return v.AsString()
}

// uintValue reads a non-negative integer at most limit from an int, an
// integral double (some SDKs send numbers as doubles) or a decimal string.
func uintValue(v pcommon.Value, limit uint64) (uint64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		n := v.Int()
		return uint64(n), n >= 0 && uint64(n) <= limit
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if f >= 0 && f <= float64(limit) && f == math.Trunc(f) && f < 1<<63 {
			return uint64(f), true
		}
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseUint(v.Str(), 10, 64)
		return n, err == nil && n <= limit
	}
	return 0, false
}

// repair makes s valid UTF-8 and at most limit bytes, cutting at a rune
// boundary, and counts what it did.
func repair(s string, limit int, f Field, st *Stats) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		st.Sanitized[f]++
	}
	if len(s) > limit {
		s = Truncate(s, limit)
		st.Truncated[f]++
	}
	return s
}

// Truncate cuts valid UTF-8 s to at most n bytes without splitting a rune
// (event.Truncate: the producers' rule).
func Truncate(s string, n int) string { return event.Truncate(s, n) }

// shortForLog bounds a value that goes into a log line.
func shortForLog(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > 64 {
		return Truncate(s, 64) + "…"
	}
	return s
}

// SplitAt walks td as Map did (same window) and splits its rows at row n:
// it returns the repairs made to rows [0, n) and a payload holding the
// spans of rows [n, end) with their resources and scopes. After a write
// that stopped part-way, the first n rows' outcome is final (counted now)
// and only the rest is retried. Spans that are not rows (other scopes,
// root spans, dropped spans) are in neither: their outcome is final too.
func SplitAt(td ptrace.Traces, window timewindow.Bounds, n int) (done Stats, rest ptrace.Traces) {
	rest = ptrace.NewTraces()
	var r Row
	var scratch Stats
	row := 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		var ors ptrace.ResourceSpans
		haveRS := false
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			if !IsStatusScope(ss.Scope()) {
				continue
			}
			var oss ptrace.ScopeSpans
			haveSS := false
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				st := &scratch
				if row < n {
					st = &done
				}
				reason, status, _ := MapSpan(spans.At(k), &r, st, window)
				if !status || reason != DropNone {
					continue
				}
				if row >= n {
					if !haveRS {
						ors = rest.ResourceSpans().AppendEmpty()
						rs.Resource().CopyTo(ors.Resource())
						ors.SetSchemaUrl(rs.SchemaUrl())
						haveRS = true
					}
					if !haveSS {
						oss = ors.ScopeSpans().AppendEmpty()
						ss.Scope().CopyTo(oss.Scope())
						oss.SetSchemaUrl(ss.SchemaUrl())
						haveSS = true
					}
					spans.At(k).CopyTo(oss.Spans().AppendEmpty())
				}
				row++
			}
		}
	}
	return done, rest
}
