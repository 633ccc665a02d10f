package host

import (
	"sync/atomic"

	"github.com/statustrace/statustrace/event"
)

// ring is a bounded multi-producer, single-consumer queue of transitions
// (Dmitry Vyukov's bounded queue): producers claim a slot with one CAS and
// copy the value in, so Report neither locks nor allocates. Each cell's
// sequence number says whose turn it is.
type ring struct {
	_     [64]byte // keep the hot counters on their own cache lines
	enq   atomic.Uint64
	_     [56]byte
	deq   atomic.Uint64 // written only by the consumer
	_     [56]byte
	mask  uint64
	cells []cell
}

type cell struct {
	seq atomic.Uint64
	t   event.Transition
}

// newRing returns a ring of at least size cells (rounded up to a power of two).
func newRing(size int) *ring {
	n := uint64(1)
	for n < uint64(size) {
		n <<= 1
	}
	r := &ring{mask: n - 1, cells: make([]cell, n)}
	for i := range r.cells {
		r.cells[i].seq.Store(uint64(i))
	}
	return r
}

// push copies *t into the ring. It returns the position taken and true, or
// false when the ring is full.
func (r *ring) push(t *event.Transition) (uint64, bool) {
	pos := r.enq.Load()
	for {
		c := &r.cells[pos&r.mask]
		seq := c.seq.Load()
		switch dif := int64(seq - pos); {
		case dif == 0:
			if r.enq.CompareAndSwap(pos, pos+1) {
				c.t = *t
				c.seq.Store(pos + 1)
				return pos, true
			}
			pos = r.enq.Load()
		case dif < 0:
			return 0, false // the consumer has not freed this cell yet: full
		default:
			pos = r.enq.Load() // another producer took it
		}
	}
}

// pop moves the oldest transition into *dst. Only one goroutine may pop.
func (r *ring) pop(dst *event.Transition) bool {
	pos := r.deq.Load()
	c := &r.cells[pos&r.mask]
	if c.seq.Load() != pos+1 {
		return false // empty, or its producer is still copying
	}
	*dst = c.t
	c.t = event.Transition{} // do not keep the strings alive
	c.seq.Store(pos + r.mask + 1)
	r.deq.Store(pos + 1)
	return true
}

// pushed is the number of transitions ever accepted.
func (r *ring) pushed() uint64 { return r.enq.Load() }

// depth is the number of transitions waiting.
func (r *ring) depth() uint64 {
	d, e := r.deq.Load(), r.enq.Load()
	if e < d {
		return 0
	}
	return e - d
}
