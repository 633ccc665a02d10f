package event

import (
	"crypto/sha256"
	"encoding/binary"
)

// TransitionSpanID is the span ID of the transition (requestID, seq): the
// first 8 bytes of SHA-256("statustrace/transition\x00" || requestID || 0x00
// || big-endian seq), with an all-zero result (invalid in OpenTelemetry)
// mapped to ...01. The plugin gives each transition span this ID, so a
// re-sent transition is the same span, and storage need not keep it: the
// exporter stores only IDs that differ, and the schema recomputes the rest.
func TransitionSpanID(requestID string, seq uint64) [8]byte {
	const domain = "statustrace/transition\x00"
	var stack [128]byte // most request IDs fit: no allocation
	buf := append(stack[:0], domain...)
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
