package spans

import (
	"crypto/sha256"
	"encoding/binary"

	"go.opentelemetry.io/otel/trace"
)

// Span and trace IDs are derived from the event, never drawn at random, so
// that a transition re-sent after a crash becomes the very same span:
//
//	h                  = SHA-256("statustrace/event\x00" + request_id)
//	trace_id           = h[0:16]   (unless the event joins its caller's trace)
//	event span_id      = h[16:24]  (the root span of the event)
//	transition span_id = SHA-256("statustrace/transition\x00" + request_id + "\x00" + seq as 8 bytes big-endian)[0:8]
//
// An all-zero ID (invalid in OpenTelemetry) gets its last byte set to 1.

const (
	eventDomain      = "statustrace/event\x00"
	transitionDomain = "statustrace/transition\x00"
)

// idHasher keeps a scratch buffer so that hashing does not allocate.
type idHasher struct{ buf []byte }

// eventIDs returns the derived trace ID and the event (root) span ID.
func (h *idHasher) eventIDs(requestID string) (trace.TraceID, trace.SpanID) {
	h.buf = append(append(h.buf[:0], eventDomain...), requestID...)
	sum := sha256.Sum256(h.buf)
	var tid trace.TraceID
	var sid trace.SpanID
	copy(tid[:], sum[0:16])
	copy(sid[:], sum[16:24])
	if !tid.IsValid() {
		tid[15] = 1
	}
	if !sid.IsValid() {
		sid[7] = 1
	}
	return tid, sid
}

// transitionSpanID returns the span ID of the transition (request_id, seq).
func (h *idHasher) transitionSpanID(requestID string, seq uint64) trace.SpanID {
	h.buf = append(append(h.buf[:0], transitionDomain...), requestID...)
	h.buf = append(h.buf, 0)
	h.buf = binary.BigEndian.AppendUint64(h.buf, seq)
	sum := sha256.Sum256(h.buf)
	var sid trace.SpanID
	copy(sid[:], sum[0:8])
	if !sid.IsValid() {
		sid[7] = 1
	}
	return sid
}

// TraceID, EventSpanID and TransitionSpanID expose the derivation for tools
// and tests that need to find an event's spans.
func TraceID(requestID string) trace.TraceID {
	var h idHasher
	tid, _ := h.eventIDs(requestID)
	return tid
}

func EventSpanID(requestID string) trace.SpanID {
	var h idHasher
	_, sid := h.eventIDs(requestID)
	return sid
}

func TransitionSpanID(requestID string, seq uint64) trace.SpanID {
	var h idHasher
	return h.transitionSpanID(requestID, seq)
}
