package plugin

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/statustrace/statustrace/event"
	pb "github.com/statustrace/statustrace/plugin/proto"
)

func TestProtoRoundTrip(t *testing.T) {
	in := event.Transition{
		Keys: event.Keys{Tenant: "t", Namespace: "ns", Function: "fn", Qualifier: "v1", RequestID: "r"},
		Seq:  7, Attempt: 2, From: event.StateRunning, To: event.StateRetrying, TimeUnixNano: 123,
		ErrorCode: "E", ErrorMessage: "m", InvokeType: "async", Node: "n",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	var m pb.Transition
	ToProto(&m, &in)
	var out event.Transition
	FromProto(&out, &m)
	if out != in {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func TestToProtoCleansStrings(t *testing.T) {
	in := event.Transition{Keys: event.Keys{RequestID: "r\xff1"}, ErrorMessage: strings.Repeat("日", event.MaxErrorMessageBytes)}
	var m pb.Transition
	ToProto(&m, &in)
	if !utf8.ValidString(m.RequestId) || m.RequestId != "r\uFFFD1" {
		t.Fatalf("request id %q", m.RequestId)
	}
	if len(m.ErrorMessage) > event.MaxErrorMessageBytes || !utf8.ValidString(m.ErrorMessage) || len(m.ErrorMessage) < event.MaxErrorMessageBytes-3 {
		t.Fatalf("error message: %d bytes, valid %v", len(m.ErrorMessage), utf8.ValidString(m.ErrorMessage))
	}
	var out event.Transition
	FromProto(&out, &pb.Transition{ToState: pb.State(1000)})
	if out.To.Valid() {
		t.Fatal("out-of-range state became valid")
	}
}
