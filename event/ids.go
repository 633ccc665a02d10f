package event

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
)

// transitionDomain separates transition span IDs from every other hash.
const transitionDomain = "statustrace/transition\x00"

// TransitionSpanID is the span ID of the transition (requestID, seq): the
// first 8 bytes of SHA-256("statustrace/transition\x00" || requestID || 0x00
// || big-endian seq), with an all-zero result (invalid in OpenTelemetry)
// mapped to ...01. The plugin gives each transition span this ID, so a
// re-sent transition is the same span, and storage need not keep it: the
// exporter stores only IDs that differ, and the schema recomputes the rest
// with SQLTransitionSpanID.
func TransitionSpanID(requestID string, seq uint64) [8]byte {
	var stack [128]byte // most request IDs fit: no allocation
	buf := append(stack[:0], transitionDomain...)
	buf = append(buf, requestID...)
	buf = append(buf, 0)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	sum := sha256.Sum256(buf)
	var id [8]byte
	copy(id[:], sum[:8])
	if id == ([8]byte{}) {
		id[7] = 1
	}
	return id
}

// SQLTransitionSpanID is TransitionSpanID in ClickHouse SQL over a String
// column of request IDs and a UInt64 column of seqs: a FixedString(8),
// all-zero rule included. The schema's span_id derives from it, so a span
// ID reads back exactly as the plugin made it.
func SQLTransitionSpanID(requestIDCol, seqCol string) string {
	domain := strings.ReplaceAll(transitionDomain, "\x00", `\0`)
	// reverse(reinterpretAsFixedString(UInt64)): big-endian bytes.
	sum := "toFixedString(substring(SHA256(concat('" + domain + "', " + requestIDCol + `, '\0', reverse(reinterpretAsFixedString(` + seqCol + ")))), 1, 8), 8)"
	return SQLNonZeroSpanID(sum)
}

// SQLNonZeroSpanID is the all-zero rule of span IDs over a FixedString(8)
// expression: zero bytes become ...01, anything else stays. ClickHouse
// computes a repeated subexpression once.
func SQLNonZeroSpanID(expr string) string {
	return "if(" + expr + " = unhex('0000000000000000'), toFixedString(unhex('0000000000000001'), 8), " + expr + ")"
}
