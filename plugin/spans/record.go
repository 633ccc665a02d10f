package spans

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/statustrace/statustrace/event"
)

// A spool record is one acknowledged batch: its valid transitions, each with
// the span starts the Sink computed from the transitions before it (the
// only state a span needs besides the transition itself), so that a record
// read back by another process gives exactly the spans it would have.
//
//	version byte (1)
//	uvarint  transitions
//	per transition: 10 strings (uvarint length + bytes: tenant, namespace,
//	function, qualifier, request_id, error_code, error_message, invoke_type,
//	node, traceparent), uvarint seq, uvarint attempt, from, to (one byte
//	each), varint time, varint span start, varint event start

const recordVersion = 1

// staged is a transition with its computed span starts.
type staged struct {
	t          event.Transition
	start      int64 // transition span start
	eventStart int64 // event span start (first transition), 0 if unknown
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// encodeRecord appends the record of ts to dst.
func encodeRecord(dst []byte, ts []staged) []byte {
	size := 1 + binary.MaxVarintLen64
	for i := range ts {
		t := &ts[i].t
		size += 64 + len(t.Tenant) + len(t.Namespace) + len(t.Function) + len(t.Qualifier) + len(t.RequestID) +
			len(t.ErrorCode) + len(t.ErrorMessage) + len(t.InvokeType) + len(t.Node) + len(t.TraceParent)
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	for i := range ts {
		t := &ts[i].t
		for _, s := range [...]string{t.Tenant, t.Namespace, t.Function, t.Qualifier, t.RequestID,
			t.ErrorCode, t.ErrorMessage, t.InvokeType, t.Node, t.TraceParent} {
			dst = appendString(dst, s)
		}
		dst = binary.AppendUvarint(dst, t.Seq)
		dst = binary.AppendUvarint(dst, uint64(t.Attempt))
		dst = append(dst, byte(t.From), byte(t.To))
		dst = binary.AppendVarint(dst, t.TimeUnixNano)
		dst = binary.AppendVarint(dst, ts[i].start)
		dst = binary.AppendVarint(dst, ts[i].eventStart)
	}
	return dst
}

var errRecord = errors.New("malformed spool record")

// decodeRecord reads a record. The strings share one copy of b.
func decodeRecord(b []byte) ([]staged, error) {
	if len(b) < 1 || b[0] != recordVersion {
		return nil, fmt.Errorf("%w: version %v", errRecord, b[:min(len(b), 1)])
	}
	all := string(b) // one allocation for every string of the record
	off := 1
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b[off:])
		if n <= 0 {
			return 0, false
		}
		off += n
		return v, true
	}
	sv := func() (int64, bool) {
		v, n := binary.Varint(b[off:])
		if n <= 0 {
			return 0, false
		}
		off += n
		return v, true
	}
	str := func() (string, bool) {
		l, ok := uv()
		if !ok || l > uint64(len(b)-off) {
			return "", false
		}
		s := all[off : off+int(l)]
		off += int(l)
		return s, true
	}
	n, ok := uv()
	if !ok || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: count", errRecord)
	}
	out := make([]staged, n)
	for i := range out {
		st := &out[i]
		t := &st.t
		for _, dst := range [...]*string{&t.Tenant, &t.Namespace, &t.Function, &t.Qualifier, &t.RequestID,
			&t.ErrorCode, &t.ErrorMessage, &t.InvokeType, &t.Node, &t.TraceParent} {
			if *dst, ok = str(); !ok {
				return nil, fmt.Errorf("%w: transition %d", errRecord, i)
			}
		}
		var attempt uint64
		if t.Seq, ok = uv(); !ok {
			return nil, fmt.Errorf("%w: transition %d", errRecord, i)
		}
		if attempt, ok = uv(); !ok || off+2 > len(b) {
			return nil, fmt.Errorf("%w: transition %d", errRecord, i)
		}
		t.Attempt = uint32(attempt)
		t.From, t.To = event.State(b[off]), event.State(b[off+1])
		off += 2
		for _, dst := range [...]*int64{&t.TimeUnixNano, &st.start, &st.eventStart} {
			if *dst, ok = sv(); !ok {
				return nil, fmt.Errorf("%w: transition %d", errRecord, i)
			}
		}
	}
	if off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the last transition", errRecord, len(b)-off)
	}
	return out, nil
}
