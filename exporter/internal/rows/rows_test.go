package rows

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/internal/timewindow"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)

// window is what the tests' spans (ending within minutes of t0) must fit.
var window = timewindow.Window{Retention: 72 * time.Hour, MaxSkew: 10 * time.Minute}.At(t0)

// goodSpan appends a valid transition span to ss.
func goodSpan(ss ptrace.ScopeSpans, req string, seq int64, from, to string) ptrace.Span {
	sp := ss.Spans().AppendEmpty()
	sp.SetName(to)
	sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(seq)})
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(seq) * time.Second)))
	a := sp.Attributes()
	a.PutStr(event.AttrTenant, "acme")
	a.PutStr(event.AttrNamespace, "ns")
	a.PutStr(event.AttrFunction, "resize")
	a.PutStr(event.AttrQualifier, "LATEST")
	a.PutStr(event.AttrRequestID, req)
	a.PutStr(event.AttrInvokeType, "async")
	a.PutInt(event.AttrSeq, seq)
	a.PutInt(event.AttrAttempt, 1)
	a.PutStr(event.AttrFromState, from)
	a.PutStr(event.AttrToState, to)
	a.PutStr(event.AttrNode, "node-1")
	a.PutStr(event.AttrSpanRole, event.RoleTransition)
	return sp
}

func newTraces() (ptrace.Traces, ptrace.ScopeSpans) {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	ss.Scope().SetName(event.ScopeName)
	return td, ss
}

func TestMapGoodSpan(t *testing.T) {
	t.Parallel()
	td, ss := newTraces()
	sp := goodSpan(ss, "req-1", 2, "QUEUED", "RUNNING")
	sp.Attributes().PutStr(event.AttrErrorCode, "Timeout")
	sp.Attributes().PutStr(event.AttrErrorMsg, "took too long")
	var c Columns
	st := Map(td, &c, window)
	if st.Rows != 1 || st.TotalDropped() != 0 || c.Len() != 1 {
		t.Fatalf("stats %+v, rows %d", st, c.Len())
	}
	want := map[string]any{
		"tenant": "acme", "ns": "ns", "fn": "resize", "q": "LATEST", "req": "req-1",
		"from": "QUEUED", "to": "RUNNING", "code": "Timeout", "msg": "took too long",
		"invoke": "async", "node": "node-1",
	}
	got := map[string]any{
		"tenant": c.Tenant[0], "ns": c.Namespace[0], "fn": c.Function[0], "q": c.Qualifier[0], "req": c.RequestID[0],
		"from": c.FromState[0], "to": c.ToState[0], "code": c.ErrorCode[0], "msg": c.ErrorMessage[0],
		"invoke": c.InvokeType[0], "node": c.Node[0],
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if c.Seq[0] != 2 || c.Attempt[0] != 1 {
		t.Errorf("seq %d attempt %d", c.Seq[0], c.Attempt[0])
	}
	if !c.Time[0].Equal(t0.Add(2 * time.Second)) {
		t.Errorf("time %v", c.Time[0])
	}
	if c.TraceID[0] != string([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}) || c.SpanID[0] != string([]byte{1, 2, 3, 4, 5, 6, 7, 2}) {
		t.Errorf("ids %x %x", c.TraceID[0], c.SpanID[0])
	}
	if got := len(c.Slices()); got != len(InsertColumns) {
		t.Errorf("Slices has %d columns, InsertColumns %d", got, len(InsertColumns))
	}
}

func TestMapIgnoresOtherSpans(t *testing.T) {
	t.Parallel()
	td, ss := newTraces()
	root := goodSpan(ss, "req-1", 3, "RUNNING", "FINISHED")
	root.Attributes().PutStr(event.AttrSpanRole, event.RoleEvent)
	other := td.ResourceSpans().At(0).ScopeSpans().AppendEmpty()
	other.Scope().SetName("some/other/library")
	goodSpan(other, "req-2", 1, "", "QUEUED")
	var c Columns
	st := Map(td, &c, window)
	if st.Rows != 0 || st.Ignored != 2 || st.TotalDropped() != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Bad spans are dropped with a reason and do not affect the good rows beside them.
func TestMapBadInput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mutate func(sp ptrace.Span)
		reason DropReason
	}{
		{"missing tenant", func(sp ptrace.Span) { sp.Attributes().Remove(event.AttrTenant) }, DropMissingAttribute},
		{"empty request id", func(sp ptrace.Span) { sp.Attributes().PutStr(event.AttrRequestID, "") }, DropMissingAttribute},
		{"missing function", func(sp ptrace.Span) { sp.Attributes().Remove(event.AttrFunction) }, DropMissingAttribute},
		{"missing seq", func(sp ptrace.Span) { sp.Attributes().Remove(event.AttrSeq) }, DropMissingAttribute},
		{"missing to_state", func(sp ptrace.Span) { sp.Attributes().Remove(event.AttrToState) }, DropMissingAttribute},
		{"missing role", func(sp ptrace.Span) { sp.Attributes().Remove(event.AttrSpanRole) }, DropMissingAttribute},
		{"seq as text word", func(sp ptrace.Span) { sp.Attributes().PutStr(event.AttrSeq, "five") }, DropWrongType},
		{"negative seq", func(sp ptrace.Span) { sp.Attributes().PutInt(event.AttrSeq, -1) }, DropWrongType},
		{"fractional seq", func(sp ptrace.Span) { sp.Attributes().PutDouble(event.AttrSeq, 1.5) }, DropWrongType},
		{"attempt too big", func(sp ptrace.Span) { sp.Attributes().PutInt(event.AttrAttempt, 1<<40) }, DropWrongType},
		{"tenant as int", func(sp ptrace.Span) { sp.Attributes().PutInt(event.AttrTenant, 7) }, DropWrongType},
		{"to_state as map", func(sp ptrace.Span) { sp.Attributes().PutEmptyMap(event.AttrToState) }, DropWrongType},
		{"unknown to_state", func(sp ptrace.Span) { sp.Attributes().PutStr(event.AttrToState, "EXPLODED") }, DropUnknownState},
		{"lower-case to_state", func(sp ptrace.Span) { sp.Attributes().PutStr(event.AttrToState, "running") }, DropUnknownState},
		{"unknown from_state", func(sp ptrace.Span) { sp.Attributes().PutStr(event.AttrFromState, "LIMBO") }, DropUnknownState},
		{"request id too long", func(sp ptrace.Span) {
			sp.Attributes().PutStr(event.AttrRequestID, strings.Repeat("r", event.MaxKeyBytes+1))
		}, DropKeyTooLong},
		{"tenant too long", func(sp ptrace.Span) { sp.Attributes().PutStr(event.AttrTenant, strings.Repeat("t", 10000)) }, DropKeyTooLong},
		{"no end time", func(sp ptrace.Span) { sp.SetEndTimestamp(0) }, DropBadTimestamp},
		{"end time beyond int64", func(sp ptrace.Span) { sp.SetEndTimestamp(pcommon.Timestamp(1 << 63)) }, DropBadTimestamp},
		{"end time a year ahead", func(sp ptrace.Span) { sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.AddDate(1, 0, 0))) }, DropBadTimestamp},
		{"end time in 2200 (TTL overflow)", func(sp ptrace.Span) {
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)))
		}, DropBadTimestamp},
		{"end time older than the retention", func(sp ptrace.Span) {
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(-73 * time.Hour)))
		}, DropExpired},
		{"end time 104 days ago", func(sp ptrace.Span) { sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.AddDate(0, 0, -104))) }, DropExpired},
		{"seq 0", func(sp ptrace.Span) { sp.Attributes().PutInt(event.AttrSeq, 0) }, DropInvalidSeq},
		{"seq \"0\"", func(sp ptrace.Span) { sp.Attributes().PutStr(event.AttrSeq, "0") }, DropInvalidSeq},
		{"request id not UTF-8", func(sp ptrace.Span) { sp.Attributes().PutStr(event.AttrRequestID, "req-\xff") }, DropInvalidKey},
		{"tenant not UTF-8", func(sp ptrace.Span) { sp.Attributes().PutStr(event.AttrTenant, "\xc3") }, DropInvalidKey},
		{"qualifier not UTF-8", func(sp ptrace.Span) { sp.Attributes().PutStr(event.AttrQualifier, "v\xe2\x82") }, DropInvalidKey},
		{"unknown role", func(sp ptrace.Span) { sp.Attributes().PutStr(event.AttrSpanRole, "weird") }, DropUnknownRole},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			td, ss := newTraces()
			goodSpan(ss, "good-1", 1, "", "QUEUED")
			tc.mutate(goodSpan(ss, "bad", 2, "QUEUED", "RUNNING"))
			goodSpan(ss, "good-2", 1, "", "QUEUED")
			var c Columns
			st := Map(td, &c, window)
			if st.Rows != 2 || c.Len() != 2 || c.RequestID[0] != "good-1" || c.RequestID[1] != "good-2" {
				t.Fatalf("good rows lost: stats %+v rows %v", st, c.RequestID)
			}
			if st.Dropped[tc.reason] != 1 || st.TotalDropped() != 1 {
				t.Fatalf("dropped %v, want one %s", st.Dropped, tc.reason)
			}
			if st.Example[tc.reason].Attribute == "" {
				t.Errorf("no example detail for %s", tc.reason)
			}
		})
	}
}

func TestMapRepairs(t *testing.T) {
	t.Parallel()
	td, ss := newTraces()
	sp := goodSpan(ss, "req-é", 4, "RUNNING", "FAILED")
	huge := strings.Repeat("é", 1<<19) // 1 MiB of two-byte runes
	sp.Attributes().PutStr(event.AttrErrorMsg, huge)
	sp.Attributes().PutStr(event.AttrErrorCode, "bad\xc3")
	sp.Attributes().PutInt(event.AttrNode, 42)                              // wrong type for free text: kept as text
	sp.Attributes().PutStr(event.AttrInvokeType, strings.Repeat("x", 1000)) // too long
	var c Columns
	st := Map(td, &c, window)
	if st.Rows != 1 {
		t.Fatalf("stats %+v", st)
	}
	msg := c.ErrorMessage[0]
	if len(msg) > event.MaxErrorMessageBytes || len(msg) < event.MaxErrorMessageBytes-1 || !utf8.ValidString(msg) {
		t.Errorf("error message: %d bytes, valid %v", len(msg), utf8.ValidString(msg))
	}
	if c.RequestID[0] != "req-é" || c.ErrorCode[0] != "bad\uFFFD" || c.Node[0] != "42" || len(c.InvokeType[0]) != event.MaxKeyBytes {
		t.Errorf("repairs: req %q code %q node %q invoke %d bytes", c.RequestID[0], c.ErrorCode[0], c.Node[0], len(c.InvokeType[0]))
	}
	if st.Truncated[FieldErrorMessage] != 1 || st.Truncated[FieldInvokeType] != 1 || st.Sanitized[FieldErrorCode] != 1 {
		t.Errorf("repair counts: truncated %v sanitized %v", st.Truncated, st.Sanitized)
	}
}

func TestMapLenientNumbers(t *testing.T) {
	t.Parallel()
	td, ss := newTraces()
	goodSpan(ss, "a", 1, "", "QUEUED").Attributes().PutStr(event.AttrSeq, "17")
	goodSpan(ss, "b", 1, "", "QUEUED").Attributes().PutDouble(event.AttrSeq, 18)
	sp := goodSpan(ss, "c", 1, "", "QUEUED")
	sp.Attributes().Remove(event.AttrAttempt)
	sp.Attributes().Remove(event.AttrNamespace)
	var c Columns
	if st := Map(td, &c, window); st.Rows != 3 {
		t.Fatalf("stats %+v", st)
	}
	if c.Seq[0] != 17 || c.Seq[1] != 18 || c.Attempt[2] != 0 || c.Namespace[2] != "" {
		t.Errorf("seq %v attempt %v ns %q", c.Seq, c.Attempt, c.Namespace[2])
	}
}

func TestIDsSurviveReset(t *testing.T) {
	t.Parallel()
	td, ss := newTraces()
	for i := range 3000 {
		goodSpan(ss, "r", int64(i%250+1), "", "QUEUED")
	}
	var c Columns
	Map(td, &c, window)
	first := c.SpanID[0]
	kept := strings.Clone(first)
	c.Reset()
	Map(td, &c, window)
	if first != kept {
		t.Error("a string from an earlier batch changed after Reset")
	}
	for i, s := range c.SpanID {
		if len(s) != 8 || s[7] != byte(i%250+1) {
			t.Fatalf("span id %d = %x", i, s)
		}
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"}, {"hello", 3, "hel"}, {"héllo", 2, "h"}, {"日本", 4, "日"}, {"日本", 0, ""},
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// Two request IDs that differ only in invalid bytes stay two events: neither
// is repaired into the other (both are dropped and counted).
func TestInvalidKeysNeverMerge(t *testing.T) {
	t.Parallel()
	td, ss := newTraces()
	goodSpan(ss, "req-\xff", 1, "", "QUEUED")
	goodSpan(ss, "req-\xfe", 1, "", "QUEUED")
	goodSpan(ss, "req-\uFFFD", 1, "", "QUEUED") // what a repair would have made of both
	var c Columns
	st := Map(td, &c, window)
	if c.Len() != 1 || c.RequestID[0] != "req-\uFFFD" || st.Dropped[DropInvalidKey] != 2 {
		t.Fatalf("rows %q, dropped %v", c.RequestID, st.Dropped)
	}
}

func TestSliceSharesRows(t *testing.T) {
	t.Parallel()
	td, ss := newTraces()
	for i := range 10 {
		goodSpan(ss, "r"+string(rune('a'+i)), 1, "", "QUEUED")
	}
	var c Columns
	Map(td, &c, window)
	part := c.Slice(3, 7)
	if part.Len() != 4 || part.RequestID[0] != "rd" || part.RequestID[3] != "rg" {
		t.Fatalf("slice rows %q", part.RequestID)
	}
	for i, col := range part.Slices() {
		if n := reflectLen(col); n != 4 {
			t.Errorf("column %s has %d rows in the slice", InsertColumns[i].Name, n)
		}
	}
}

func reflectLen(col any) int {
	switch v := col.(type) {
	case []string:
		return len(v)
	case []uint64:
		return len(v)
	case []uint32:
		return len(v)
	case []time.Time:
		return len(v)
	case []any:
		return len(v)
	}
	return -1
}

// TestSlicesAllocateNothingPerRow: once a batch's boxes exist, handing its
// columns to the driver allocates a constant few (the slice of columns),
// not one per row: an allocation per row and LowCardinality column is what
// boxing is there to avoid (a box taken as &v of the range variable did
// exactly that).
func TestSlicesAllocateNothingPerRow(t *testing.T) {
	var c Columns
	for i := range 2000 {
		r := Row{Seq: uint64(i%5 + 1), To: event.StateQueued, Node: "node-" + strconv.Itoa(i%7)}
		r.Tenant, r.Function, r.RequestID = "acme", "fn-"+strconv.Itoa(i%20), "r"+strconv.Itoa(i/5)
		c.Append(&r)
	}
	c.Slices() // the boxes, once per batch
	if n := testing.AllocsPerRun(5, func() { c.Slices() }); n > 50 {
		t.Errorf("Slices of 2,000 rows allocates %.0f times a call, want a constant few", n)
	}
}

// TestSlicesBoxLowCardinality: the driver gets each LowCardinality column
// as interface values pointing to its strings, row for row, one pointer
// per distinct value, whatever the runs
// of repeated and changing values; every other column as its typed slice;
// and Reset lets go of the boxes (they point into pdata).
func TestSlicesBoxLowCardinality(t *testing.T) {
	t.Parallel()
	var c Columns
	for round, fns := range [][]string{{"a", "a", "b", "a", "c", "c", "b"}, {"c", "d", "d", "a"}} {
		c.Reset()
		for i, fn := range fns {
			r := Row{Seq: 1, To: event.StateQueued, Node: "node-" + fn + fn}
			r.Tenant, r.Function, r.RequestID = "acme", fn, fmt.Sprint("r", i)
			c.Append(&r)
		}
		for i, col := range c.Slices() {
			d := columns[i]
			if d.lowCard == nil {
				if _, boxed := col.([]any); boxed {
					t.Errorf("column %s (%s) boxed", d.Name, d.Type)
				}
				continue
			}
			got, ok := col.([]any)
			want := d.lowCard(&c)
			if !ok || len(got) != len(want) {
				t.Fatalf("round %d: column %s is %T of %d rows, want []any of %d", round, d.Name, col, reflectLen(col), len(want))
			}
			same := map[string]*string{}
			for j := range want {
				p, _ := got[j].(*string)
				if p == nil || *p != want[j] {
					t.Errorf("round %d: column %s row %d = %v, want a *string to %q", round, d.Name, j, got[j], want[j])
					continue
				}
				// One pointer per value: the driver keys its dictionary
				// by the boxed value, so two pointers to one string
				// would put it in the dictionary twice.
				if q, ok := same[*p]; ok && q != p {
					t.Errorf("round %d: column %s row %d: %q boxed twice", round, d.Name, j, *p)
				}
				same[*p] = p
			}
		}
	}
	c.Reset()
	for i, b := range c.boxes {
		if len(b) != 0 || slices.ContainsFunc(b[:cap(b)], func(v any) bool { return v != nil }) {
			t.Errorf("column %s keeps boxes after Reset", columns[i].Name)
		}
	}
	for i, m := range c.interned {
		if len(m) != 0 {
			t.Errorf("column %s keeps %d interned strings after Reset", columns[i].Name, len(m))
		}
	}
}

func TestDropReasonNamesAreUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, r := range DropReasons() {
		if r.String() == "" || r.String() == "unknown" || seen[r.String()] {
			t.Errorf("reason %d named %q", r, r)
		}
		seen[r.String()] = true
	}
}

func TestSplitAt(t *testing.T) {
	t.Parallel()
	td, ss := newTraces()
	for i := range 10 {
		sp := goodSpan(ss, "r"+string(rune('a'+i)), 1, "", "QUEUED")
		if i%3 == 0 {
			sp.Attributes().PutStr(event.AttrErrorCode, "bad\xc3") // a repair
		}
	}
	goodSpan(ss, "dropped", 0, "", "QUEUED") // seq 0: not a row
	other := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	other.Scope().SetName(event.ScopeName)
	goodSpan(other, "rk", 1, "", "QUEUED")
	var c Columns
	all := Map(td, &c, window)
	if c.Len() != 11 {
		t.Fatalf("%d rows", c.Len())
	}
	done, rest := SplitAt(td, window, 4)
	if done.Sanitized[FieldErrorCode] != 2 { // rows a and d
		t.Errorf("repairs of the first 4 rows: %v", done.Sanitized)
	}
	var rc Columns
	restStats := Map(rest, &rc, window)
	if rc.Len() != 7 || rc.RequestID[0] != "re" || rc.RequestID[6] != "rk" || restStats.TotalDropped() != 0 {
		t.Fatalf("rest rows %q, stats %+v", rc.RequestID, restStats)
	}
	if done.Sanitized[FieldErrorCode]+restStats.Sanitized[FieldErrorCode] != all.Sanitized[FieldErrorCode] {
		t.Error("repairs split does not add up")
	}
	if rest.ResourceSpans().Len() != 2 {
		t.Errorf("rest keeps %d resources, want both", rest.ResourceSpans().Len())
	}
}

// The span's start gives the time in from_state; the terminal span's event
// start attribute the end-to-end time. Nonsense values are unknown (0),
// never a reason to drop the row.
func TestMapDurations(t *testing.T) {
	td, ss := newTraces()
	goodSpan(ss, "d", 2, event.StateQueued.String(), event.StateRunning.String()) // 2s after its start
	goodSpan(ss, "d", 1, "", event.StateQueued.String())                          // the first transition: no time in a state
	end := goodSpan(ss, "d", 3, event.StateRunning.String(), event.StateFinished.String())
	end.Attributes().PutInt(event.AttrEventStartUnixNano, t0.Add(-time.Second).UnixNano())
	bad := goodSpan(ss, "e", 4, event.StateRunning.String(), event.StateFailed.String())
	bad.SetStartTimestamp(bad.EndTimestamp() + 1)
	bad.Attributes().PutStr(event.AttrEventStartUnixNano, "soon")
	notEnd := goodSpan(ss, "f", 2, event.StateQueued.String(), event.StateRunning.String())
	notEnd.Attributes().PutInt(event.AttrEventStartUnixNano, t0.UnixNano())
	var c Columns
	if st := Map(td, &c, window); st.Rows != 5 {
		t.Fatalf("stats %+v", st)
	}
	// The insert carries the durations as duration keys (schema version
	// 12): step code 1 is the queue wait, 2 a run.
	want := []uint32{
		schema.DurationKey(1, 2e9, false, 0),
		0,
		schema.DurationKey(2, 3e9, true, 4e9),
		0,
		schema.DurationKey(1, 2e9, false, 0),
	}
	for i, w := range want {
		if c.DurationKey[i] != w {
			t.Errorf("row %d: duration_key %#x, want %#x", i, c.DurationKey[i], w)
		}
	}
}

// Every Columns field is one column of the table, named once; a row's
// values land in the columns of their names (swapping two fields, or two
// names, in the table fails here); Slice and Reset cover every field.
func TestColumnsTable(t *testing.T) {
	t.Parallel()
	var c Columns
	v := reflect.ValueOf(&c).Elem()
	seen := map[uintptr]string{}
	for _, d := range columns {
		p := reflect.ValueOf(d.field(&c)).Pointer()
		if prev, dup := seen[p]; dup {
			t.Errorf("columns %s and %s share one field", prev, d.Name)
		}
		seen[p] = d.Name
	}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if _, ok := seen[v.Field(i).Addr().Pointer()]; !ok {
			t.Errorf("Columns.%s is in no column of the table", f.Name)
		}
	}

	r := Row{
		Keys: event.Keys{Tenant: "tenant", Namespace: "namespace", Function: "function", Qualifier: "qualifier", RequestID: "request"},
		Seq:  7, Attempt: 3, From: event.StateQueued, To: event.StateRunning, TimeUnixNano: 1_700_000_000_123_456_789,
		ErrorCode: "code", ErrorMessage: "message", InvokeType: "invoke", Node: "node",
		TraceID: [16]byte{1, 2, 3}, SpanID: [8]byte{9, 9, 9},
		FromStateNS: 11, EventNS: 12,
	}
	want := map[string]any{
		schema.ColTenant: "tenant", schema.ColNamespace: "namespace", schema.ColFunction: "function",
		schema.ColQualifier: "qualifier", schema.ColRequestID: "request", schema.ColSeq: uint64(7),
		schema.ColAttempt: uint32(3), schema.ColFromState: event.StateQueued.String(), schema.ColToState: event.StateRunning.String(),
		schema.ColTime: time.Unix(0, r.TimeUnixNano).UTC(), schema.ColErrorCode: "code", schema.ColErrorMessage: "message",
		schema.ColInvokeType: "invoke", schema.ColNode: "node",
		schema.ColTraceID: string(r.TraceID[:]), schema.ColSpanIDOverride: string(r.SpanID[:]),
		// QUEUED -> RUNNING after 11 ns: step code 1, bin floor(ln 11 / ln 1.02) = 121.
		schema.ColDurationKey: uint32(1<<25 | 121<<12),
	}
	c.Append(&r)
	c.Append(&r)
	if len(want) != len(InsertColumns) {
		t.Fatalf("test knows %d columns, InsertColumns has %d", len(want), len(InsertColumns))
	}
	part := c.Slice(1, 2)
	for i, col := range c.Slices() {
		name := InsertColumns[i].Name
		for _, got := range []any{reflect.ValueOf(col).Index(0).Interface(), reflect.ValueOf(part.Slices()[i]).Index(0).Interface()} {
			if p, ok := got.(*string); ok {
				got = *p // a LowCardinality column's boxed value
			}
			if !reflect.DeepEqual(got, want[name]) {
				t.Errorf("column %s holds %v, want %v", name, got, want[name])
			}
		}
	}
	c.Reset()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && v.Type().Field(i).IsExported() && f.Len() != 0 {
			t.Errorf("Columns.%s has %d rows after Reset", v.Type().Field(i).Name, f.Len())
		}
	}
}

// A batch large enough to be mapped in two halves gives the rows, in the
// order, and the counts of a map done in one piece: across several scopes,
// with other scopes' spans, drops, repairs and root spans mixed in. The IDs
// of both halves survive a reset and a second batch.
func TestMapInHalvesEqualsOnePiece(t *testing.T) {
	t.Parallel()
	td := ptrace.NewTraces()
	for s := range 5 {
		rs := td.ResourceSpans().AppendEmpty()
		other := rs.ScopeSpans().AppendEmpty()
		other.Scope().SetName("someone.else")
		goodSpan(other, "x", 1, "", "QUEUED")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(event.ScopeName)
		for i := range 2000 {
			sp := goodSpan(ss, "req-"+strconv.Itoa(s)+"-"+strconv.Itoa(i/5), int64(i%5+1), "", "QUEUED")
			sp.SetTraceID(pcommon.TraceID{byte(s), byte(i), byte(i >> 8), 1})
			switch i % 97 {
			case 3:
				sp.Attributes().PutStr(event.AttrToState, "NOPE") // dropped
			case 5:
				sp.Attributes().PutStr(event.AttrErrorMsg, strings.Repeat("é", event.MaxErrorMessageBytes)) // truncated
			case 7:
				sp.Attributes().PutStr(event.AttrSpanRole, event.RoleEvent) // ignored
			}
		}
	}
	if n := td.SpanCount(); n < 2*parallelMin {
		t.Fatalf("%d spans: too few to be split", n)
	}
	var one Columns
	var wantSt Stats
	var spans []ptrace.SpanSlice
	n := 0
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		ss := td.ResourceSpans().At(i).ScopeSpans()
		wantSt.Ignored += ss.At(0).Spans().Len()
		spans = append(spans, ss.At(1).Spans())
		n += ss.At(1).Spans().Len()
	}
	mapRange(spans, 0, n, &one, &wantSt, window)

	var c Columns
	for round := range 2 {
		c.Reset()
		st := Map(td, &c, window)
		if c.part == nil || c.part.Len() == 0 {
			t.Fatal("the batch was not split")
		}
		if st != wantSt {
			t.Errorf("round %d: stats %+v, want %+v", round, st, wantSt)
		}
		if st.Rows == 0 || st.TotalDropped() == 0 || st.Truncated[FieldErrorMessage] == 0 {
			t.Fatalf("the batch exercises too little: %+v", st)
		}
		if !reflect.DeepEqual(c.Slices(), one.Slices()) {
			t.Errorf("round %d: columns differ from a map in one piece", round)
		}
	}
}
