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
	"strconv"
	"strings"
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
	numFields
)

var fieldNames = [numFields]string{"error_message", "error_code", "invoke_type", "node"}

func (f Field) String() string {
	if f < numFields {
		return fieldNames[f]
	}
	return "unknown"
}

// Stats counts what one Map call did.
type Stats struct {
	Rows      int                        // rows appended
	Ignored   int                        // spans that are not status transition spans
	Dropped   [NumDropReasons]int        // status spans dropped, by reason (index 0 unused)
	Truncated [numFields]int             // fields cut to their limit
	Sanitized [numFields]int             // fields with invalid UTF-8 replaced
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

// Columns holds rows column by column, in Insert's column order, ready for
// clickhouse-go's columnar batch append. Reuse it with Reset.
type Columns struct {
	Tenant, Namespace, Function, Qualifier, RequestID []string
	Seq                                               []uint64
	Attempt                                           []uint32
	FromState, ToState                                []string
	Time                                              []time.Time
	ErrorCode, ErrorMessage, InvokeType, Node         []string
	TraceID, SpanID                                   []string // raw bytes (16 and 8)
	FromStateNS, EventNS                              []uint64

	// ids backs TraceID and SpanID: one allocation per batch, not per row.
	ids []byte
}

// Len is the number of rows.
func (c *Columns) Len() int { return len(c.RequestID) }

// Slice returns rows [lo, hi) as their own Columns, sharing c's memory (a
// view for inserting part of a batch; never Append to or Reset it).
func (c *Columns) Slice(lo, hi int) *Columns {
	return &Columns{
		Tenant: c.Tenant[lo:hi], Namespace: c.Namespace[lo:hi], Function: c.Function[lo:hi], Qualifier: c.Qualifier[lo:hi],
		RequestID: c.RequestID[lo:hi], Seq: c.Seq[lo:hi], Attempt: c.Attempt[lo:hi],
		FromState: c.FromState[lo:hi], ToState: c.ToState[lo:hi], Time: c.Time[lo:hi],
		ErrorCode: c.ErrorCode[lo:hi], ErrorMessage: c.ErrorMessage[lo:hi], InvokeType: c.InvokeType[lo:hi], Node: c.Node[lo:hi],
		TraceID: c.TraceID[lo:hi], SpanID: c.SpanID[lo:hi],
		FromStateNS: c.FromStateNS[lo:hi], EventNS: c.EventNS[lo:hi],
	}
}

// Reset empties c, keeping its memory. The strings are cleared first: they
// point into the exported pdata, which must not stay reachable from a pool.
func (c *Columns) Reset() {
	for _, col := range [...][]string{c.Tenant, c.Namespace, c.Function, c.Qualifier, c.RequestID, c.FromState, c.ToState,
		c.ErrorCode, c.ErrorMessage, c.InvokeType, c.Node, c.TraceID, c.SpanID} {
		clear(col)
	}
	c.Tenant, c.Namespace, c.Function, c.Qualifier, c.RequestID = c.Tenant[:0], c.Namespace[:0], c.Function[:0], c.Qualifier[:0], c.RequestID[:0]
	c.Seq, c.Attempt = c.Seq[:0], c.Attempt[:0]
	c.FromState, c.ToState = c.FromState[:0], c.ToState[:0]
	c.Time = c.Time[:0]
	c.ErrorCode, c.ErrorMessage, c.InvokeType, c.Node = c.ErrorCode[:0], c.ErrorMessage[:0], c.InvokeType[:0], c.Node[:0]
	c.TraceID, c.SpanID = c.TraceID[:0], c.SpanID[:0]
	c.FromStateNS, c.EventNS = c.FromStateNS[:0], c.EventNS[:0]
	c.ids = nil // strings handed out point into it: never overwrite
}

// Column is a column of Insert: its name (from internal/schema) and type.
type Column struct{ Name, Type string }

// InsertColumns lists the columns Columns fills, in order.
var InsertColumns = []Column{
	{schema.ColTenant, "LowCardinality(String)"},
	{schema.ColNamespace, "LowCardinality(String)"},
	{schema.ColFunction, "LowCardinality(String)"},
	{schema.ColQualifier, "LowCardinality(String)"},
	{schema.ColRequestID, "String"},
	{schema.ColSeq, "UInt64"},
	{schema.ColAttempt, "UInt32"},
	{schema.ColFromState, "LowCardinality(String)"},
	{schema.ColToState, "LowCardinality(String)"},
	{schema.ColTime, "DateTime64(9, 'UTC')"},
	{schema.ColErrorCode, "LowCardinality(String)"},
	{schema.ColErrorMessage, "String"},
	{schema.ColInvokeType, "LowCardinality(String)"},
	{schema.ColNode, "LowCardinality(String)"},
	{schema.ColTraceID, "FixedString(16)"},
	{schema.ColSpanIDOverride, "FixedString(8)"},
	{schema.ColFromStateNS, "UInt64"},
	{schema.ColEventNS, "UInt64"},
}

// Slices returns the column slices in InsertColumns order.
func (c *Columns) Slices() []any {
	return []any{
		c.Tenant, c.Namespace, c.Function, c.Qualifier, c.RequestID,
		c.Seq, c.Attempt, c.FromState, c.ToState, c.Time,
		c.ErrorCode, c.ErrorMessage, c.InvokeType, c.Node, c.TraceID, c.SpanID,
		c.FromStateNS, c.EventNS,
	}
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
	var r Row
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			if !IsStatusScope(ss.Scope()) {
				st.Ignored += spans.Len()
				continue
			}
			for k := 0; k < spans.Len(); k++ {
				reason, status, detail := MapSpan(spans.At(k), &r, &st, window)
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
		}
	}
	return st
}

// Append adds r as the last row.
func (c *Columns) Append(r *Row) {
	c.Tenant = append(c.Tenant, r.Tenant)
	c.Namespace = append(c.Namespace, r.Namespace)
	c.Function = append(c.Function, r.Function)
	c.Qualifier = append(c.Qualifier, r.Qualifier)
	c.RequestID = append(c.RequestID, r.RequestID)
	c.Seq = append(c.Seq, r.Seq)
	c.Attempt = append(c.Attempt, r.Attempt)
	c.FromState = append(c.FromState, r.From.String())
	c.ToState = append(c.ToState, r.To.String())
	c.Time = append(c.Time, time.Unix(0, r.TimeUnixNano).UTC())
	c.ErrorCode = append(c.ErrorCode, r.ErrorCode)
	c.ErrorMessage = append(c.ErrorMessage, r.ErrorMessage)
	c.InvokeType = append(c.InvokeType, r.InvokeType)
	c.Node = append(c.Node, r.Node)
	c.FromStateNS = append(c.FromStateNS, r.FromStateNS)
	c.EventNS = append(c.EventNS, r.EventNS)
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
	c.TraceID = append(c.TraceID, idString(b[:16]))
	c.SpanID = append(c.SpanID, idString(b[16:]))
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
	)
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
		}
	}
	if haveRole && role == event.RoleEvent {
		return DropNone, false, DropDetail{} // root spans go to otel_traces only
	}
	detail.RequestID = shortForLog(r.RequestID)
	if reason != DropNone {
		return reason, true, detail
	}
	switch {
	case !haveRole:
		return DropMissingAttribute, true, DropDetail{event.AttrSpanRole, detail.RequestID}
	case role != event.RoleTransition:
		return DropUnknownRole, true, DropDetail{event.AttrSpanRole, detail.RequestID}
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
			return DropMissingAttribute, true, DropDetail{kv.name, detail.RequestID}
		}
		if !utf8.ValidString(*kv.v) {
			return DropInvalidKey, true, DropDetail{kv.name, shortForLog(r.RequestID)}
		}
		if len(*kv.v) > event.MaxKeyBytes {
			return DropKeyTooLong, true, DropDetail{kv.name, shortForLog(r.RequestID)}
		}
	}
	detail.RequestID = shortForLog(r.RequestID)
	if !haveSeq {
		return DropMissingAttribute, true, DropDetail{event.AttrSeq, detail.RequestID}
	}
	if r.Seq < 1 {
		return DropInvalidSeq, true, DropDetail{event.AttrSeq, detail.RequestID}
	}
	if !haveTo || toName == "" {
		return DropMissingAttribute, true, DropDetail{event.AttrToState, detail.RequestID}
	}
	var err error
	if r.To, err = event.ParseState(toName); err != nil || !r.To.Valid() {
		return DropUnknownState, true, DropDetail{event.AttrToState, detail.RequestID}
	}
	if r.From, err = event.ParseState(fromName); err != nil {
		return DropUnknownState, true, DropDetail{event.AttrFromState, detail.RequestID}
	}

	end := span.EndTimestamp()
	if end == 0 || uint64(end) > math.MaxInt64 {
		return DropBadTimestamp, true, DropDetail{"end_time", detail.RequestID}
	}
	switch window.Check(int64(end)) {
	case timewindow.OK:
	case timewindow.Expired:
		return DropExpired, true, DropDetail{"end_time", detail.RequestID}
	default:
		return DropBadTimestamp, true, DropDetail{"end_time", detail.RequestID}
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
	if v, ok := span.Attributes().Get(event.AttrEventStartUnixNano); ok && r.To.Terminal() {
		if es, ok := uintValue(v, uint64(end)); ok && es > 0 && es < uint64(end) {
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

// Truncate cuts valid UTF-8 s to at most n bytes without splitting a rune.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

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
