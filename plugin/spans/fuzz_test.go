package spans

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/statustrace/statustrace/event"
)

// FuzzBuild: any transition either fails validation or maps, through the
// spool record format, to its transition span (plus the event span when
// terminal) with the derived IDs and the status attributes; nothing panics.
func FuzzBuild(f *testing.F) {
	f.Add("req-1", uint64(1), uint8(0), uint8(1), int64(1), "", "")
	f.Add("req-1", uint64(5), uint8(2), uint8(5), int64(9), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "boom")
	f.Add("", uint64(0), uint8(9), uint8(200), int64(-1), "00-zz", "\xff\xfe")
	b, k := newBuilder(pcommon.NewResource()), newTracker(16)
	f.Fuzz(func(t *testing.T, id string, seq uint64, from, to uint8, at int64, traceparent, msg string) {
		tr := event.Transition{Keys: event.Keys{RequestID: id, Function: "fn"}, Seq: seq,
			From: event.State(from), To: event.State(to), TimeUnixNano: at, TraceParent: traceparent, ErrorMessage: msg}
		if Validate(&tr) != nil {
			return
		}
		start, eventStart := k.track(&tr)
		// Through the spool record format and back: what a replay sees.
		recs, err := decodeRecord(encodeRecord(nil, []staged{{t: tr, start: start, eventStart: eventStart}}))
		if err != nil || len(recs) != 1 || recs[0].t != tr || recs[0].start != start || recs[0].eventStart != eventStart {
			t.Fatalf("record round trip: %v %+v", err, recs)
		}
		_, out := b.newBatch(2)
		b.emit(out, &recs[0])
		want := 1
		if tr.To.Terminal() {
			want = 2
		}
		if out.Len() != want {
			t.Fatalf("%d spans, want %d", out.Len(), want)
		}
		sp := out.At(0)
		if sp.SpanID() != pcommon.SpanID(TransitionSpanID(id, seq)) || sp.ParentSpanID() != pcommon.SpanID(EventSpanID(id)) {
			t.Fatal("transition span IDs not derived")
		}
		traceID := pcommon.TraceID(TraceID(id))
		if sc, ok := parseTraceparent(traceparent); ok {
			traceID = pcommon.TraceID(sc.TraceID())
			if got := fmt.Sprintf("-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags()); got != traceparent[2:55] {
				t.Fatalf("traceparent %q parsed as %q", traceparent, got)
			}
		}
		for i := 0; i < out.Len(); i++ {
			s := out.At(i)
			if s.TraceID() != traceID || s.EndTimestamp() != pcommon.Timestamp(at) || s.StartTimestamp() > s.EndTimestamp() {
				t.Fatalf("span %d: trace %s end %d start %d", i, s.TraceID(), s.EndTimestamp(), s.StartTimestamp())
			}
			seqAttr, _ := s.Attributes().Get(event.AttrSeq)
			role, _ := s.Attributes().Get(event.AttrSpanRole)
			if seqAttr.Int() != int64(seq) || (role.Str() == event.RoleEvent) != (i == 1) {
				t.Fatalf("span %d attributes %v", i, s.Attributes().AsRaw())
			}
			if m, ok := s.Attributes().Get(event.AttrErrorMsg); ok && len(m.Str()) > event.MaxErrorMessageBytes {
				t.Fatal("error message not cut")
			}
		}
		if want == 2 && out.At(1).Kind() != ptrace.SpanKindConsumer {
			t.Fatal("event span kind")
		}
	})
}
