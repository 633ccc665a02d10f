package plugin

import (
	"strings"
	"unicode/utf8"

	"github.com/statustrace/statustrace/event"
	pb "github.com/statustrace/statustrace/plugin/proto"
)

// ToProto fills dst from t, overwriting every field (dst may be reused).
// Strings are made valid UTF-8 (protobuf refuses to marshal anything else,
// which would fail the whole batch) and the error message is cut to
// event.MaxErrorMessageBytes.
func ToProto(dst *pb.Transition, t *event.Transition) {
	dst.Tenant = cleanString(t.Tenant, 0)
	dst.Namespace = cleanString(t.Namespace, 0)
	dst.Function = cleanString(t.Function, 0)
	dst.Qualifier = cleanString(t.Qualifier, 0)
	dst.RequestId = cleanString(t.RequestID, 0)
	dst.Seq = t.Seq
	dst.Attempt = t.Attempt
	dst.FromState = pb.State(t.From)
	dst.ToState = pb.State(t.To)
	dst.TimeUnixNano = t.TimeUnixNano
	dst.ErrorCode = cleanString(t.ErrorCode, 0)
	dst.ErrorMessage = cleanString(t.ErrorMessage, event.MaxErrorMessageBytes)
	dst.InvokeType = cleanString(t.InvokeType, 0)
	dst.Node = cleanString(t.Node, 0)
	dst.Traceparent = cleanString(t.TraceParent, 0)
}

// FromProto copies a wire transition into the event model.
func FromProto(dst *event.Transition, p *pb.Transition) {
	*dst = event.Transition{
		Keys: event.Keys{
			Tenant:    p.GetTenant(),
			Namespace: p.GetNamespace(),
			Function:  p.GetFunction(),
			Qualifier: p.GetQualifier(),
			RequestID: p.GetRequestId(),
		},
		Seq:          p.GetSeq(),
		Attempt:      p.GetAttempt(),
		From:         stateFromProto(p.GetFromState()),
		To:           stateFromProto(p.GetToState()),
		TimeUnixNano: p.GetTimeUnixNano(),
		ErrorCode:    p.GetErrorCode(),
		ErrorMessage: p.GetErrorMessage(),
		InvokeType:   p.GetInvokeType(),
		Node:         p.GetNode(),
		TraceParent:  p.GetTraceparent(),
	}
}

// stateFromProto keeps unknown numbers out of the valid range so that
// validation rejects them instead of wrapping around.
func stateFromProto(s pb.State) event.State {
	if s < 0 || s > 255 {
		return event.State(255)
	}
	return event.State(s)
}

func cleanString(s string, limit int) string {
	if limit > 0 {
		s = event.Truncate(s, limit)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}
