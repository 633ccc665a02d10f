package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// fileMagic starts every segment file; the digit is the format version.
const fileMagic = "STSPOOL1"

// Frame header: magic, payload length, count, index, CRC-32C of the first
// 16 bytes, CRC-32C of the payload.
const (
	headerSize = 24
	frameMagic = 0x50535453 // "STSP" little-endian
	// maxPayload keeps a corrupt-but-plausible length from asking for a
	// huge read; writers stay far below it.
	maxPayload = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	errTorn    = errors.New("torn write: the frame ends past the data")
	errCorrupt = errors.New("checksum mismatch")
)

type frame struct {
	payload []byte
	count   uint32
	index   uint32
}

func putUint32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }
func getUint32(b []byte) uint32    { return binary.LittleEndian.Uint32(b) }

func appendFrame(dst, payload []byte, count, index uint32) []byte {
	var h [headerSize]byte
	putUint32(h[0:], frameMagic)
	putUint32(h[4:], uint32(len(payload)))
	putUint32(h[8:], count)
	putUint32(h[12:], index)
	putUint32(h[16:], crc32.Checksum(h[:16], castagnoli))
	putUint32(h[20:], crc32.Checksum(payload, castagnoli))
	return append(append(dst, h[:]...), payload...)
}

// header parses a frame header; ok=false if it is not a valid one.
func header(h []byte) (length, count, index, pcrc uint32, ok bool) {
	if len(h) < headerSize || getUint32(h[0:]) != frameMagic || getUint32(h[16:]) != crc32.Checksum(h[:16], castagnoli) {
		return 0, 0, 0, 0, false
	}
	length = getUint32(h[4:])
	return length, getUint32(h[8:]), getUint32(h[12:]), getUint32(h[20:]), length <= maxPayload
}

// readFrame reads the frame at off, reading nothing at or past limit. next
// is where the following frame starts; on errCorrupt and errTorn the frame
// is lost (fr.count says how much, when its header was intact) and next
// skips it.
func readFrame(r io.ReaderAt, off, limit int64) (fr frame, next int64, err error) {
	if limit-off < headerSize {
		return frame{}, limit, errTorn
	}
	var h [headerSize]byte
	if _, err := r.ReadAt(h[:], off); err != nil {
		return frame{}, limit, fmt.Errorf("read: %w", err)
	}
	length, count, index, pcrc, ok := header(h[:])
	if !ok {
		return frame{}, resync(r, off+1, limit), fmt.Errorf("%w in a frame header", errCorrupt)
	}
	fr = frame{count: count, index: index}
	end := off + headerSize + int64(length)
	if end > limit {
		return fr, limit, errTorn
	}
	fr.payload = make([]byte, length)
	if _, err := r.ReadAt(fr.payload, off+headerSize); err != nil {
		return fr, limit, fmt.Errorf("read: %w", err)
	}
	if crc32.Checksum(fr.payload, castagnoli) != pcrc {
		fr.payload = nil
		return fr, end, fmt.Errorf("%w in a payload", errCorrupt)
	}
	return fr, end, nil
}

// resync finds the next offset in [from, limit) where a whole, valid frame
// starts; limit if there is none.
func resync(r io.ReaderAt, from, limit int64) int64 {
	if from >= limit {
		return limit
	}
	buf := make([]byte, limit-from)
	if n, _ := r.ReadAt(buf, from); int64(n) < limit-from {
		buf = buf[:n]
	}
	var magic [4]byte
	putUint32(magic[:], frameMagic)
	for i := 0; ; {
		j := bytes.Index(buf[i:], magic[:])
		if j < 0 {
			return limit
		}
		i += j
		if length, _, _, pcrc, ok := header(buf[i:]); ok && i+headerSize+int(length) <= len(buf) &&
			crc32.Checksum(buf[i+headerSize:i+headerSize+int(length)], castagnoli) == pcrc {
			return from + int64(i)
		}
		i++
	}
}
