package rows

import (
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/timewindow"
)

// FuzzMapSpan feeds arbitrary attribute values and types through the
// span-to-row mapping. It must never panic, and every row it keeps must be
// one ClickHouse accepts and the views can trust: valid UTF-8, bounded
// lengths, known states, required keys present. Seeds: testdata/fuzz/FuzzMapSpan.
// fuzzWindow admits the whole DateTime range a 10-year retention leaves.
var fuzzWindow = timewindow.Window{Retention: 10 * 365 * 24 * time.Hour, MaxSkew: timewindow.MaxSkew}.At(time.Unix(1<<31, 0))

func FuzzMapSpan(f *testing.F) {
	f.Add("acme", "req-1", "fn", uint8(0), int64(1), "", "QUEUED", "", "", "node", uint64(1), uint64(2), "transition")
	f.Add("acme", "req-1", "fn", uint8(1), int64(0), "7", "RUNNING", "FINISHED", "oops", "n", uint64(5), uint64(3), "transition")
	f.Add("\xff", "r\xc3", "", uint8(2), int64(-1), "x", "", "BAD", "\xe2\x82", "", uint64(0), uint64(0), "event")
	f.Fuzz(func(t *testing.T, tenant, req, fn string, seqKind uint8, seqInt int64, seqStr, from, to, errMsg, node string, start, end uint64, role string) {
		td, ss := newTraces()
		sp := ss.Spans().AppendEmpty()
		sp.SetStartTimestamp(pcommon.Timestamp(start))
		sp.SetEndTimestamp(pcommon.Timestamp(end))
		a := sp.Attributes()
		a.PutStr(event.AttrTenant, tenant)
		a.PutStr(event.AttrRequestID, req)
		a.PutStr(event.AttrFunction, fn)
		switch seqKind % 5 {
		case 0:
			a.PutInt(event.AttrSeq, seqInt)
		case 1:
			a.PutStr(event.AttrSeq, seqStr)
		case 2:
			a.PutDouble(event.AttrSeq, float64(seqInt)/3)
		case 3:
			a.PutEmptyBytes(event.AttrSeq).FromRaw([]byte(seqStr))
		}
		if seqKind&8 != 0 {
			a.PutInt(event.AttrAttempt, seqInt)
		}
		a.PutStr(event.AttrFromState, from)
		a.PutStr(event.AttrToState, to)
		if seqKind&16 != 0 {
			a.PutEmptyMap(event.AttrErrorMsg).PutStr("k", errMsg)
		} else {
			a.PutStr(event.AttrErrorMsg, errMsg+errMsg+errMsg)
		}
		a.PutStr(event.AttrErrorCode, errMsg)
		a.PutStr(event.AttrNode, node)
		a.PutStr(event.AttrSpanRole, role)

		var c Columns
		st := Map(td, &c, fuzzWindow)
		if st.Rows+st.Ignored+st.TotalDropped() != 1 || c.Len() != st.Rows {
			t.Fatalf("one span must be counted once: %+v", st)
		}
		if st.Rows == 0 {
			return
		}
		for _, s := range []string{c.Tenant[0], c.RequestID[0], c.Function[0], c.Namespace[0], c.Qualifier[0], c.ErrorCode[0], c.InvokeType[0], c.Node[0]} {
			if !utf8.ValidString(s) || len(s) > event.MaxKeyBytes {
				t.Fatalf("bad key/text value %q", s)
			}
		}
		if !utf8.ValidString(c.ErrorMessage[0]) || len(c.ErrorMessage[0]) > event.MaxErrorMessageBytes {
			t.Fatalf("bad error message (%d bytes)", len(c.ErrorMessage[0]))
		}
		if c.Tenant[0] == "" || c.RequestID[0] == "" || c.Function[0] == "" {
			t.Fatal("required key empty")
		}
		if s, err := event.ParseState(c.ToState[0]); err != nil || !s.Valid() {
			t.Fatalf("to_state %q", c.ToState[0])
		}
		if _, err := event.ParseState(c.FromState[0]); err != nil {
			t.Fatalf("from_state %q", c.FromState[0])
		}
		if fuzzWindow.Check(c.Time[0].UnixNano()) != timewindow.OK || c.Seq[0] < 1 || c.Seq[0] > 1<<63-1 {
			t.Fatalf("time %v seq %d", c.Time[0], c.Seq[0])
		}
		if role != event.RoleTransition {
			t.Fatalf("row from a span with role %q", role)
		}
	})
}
