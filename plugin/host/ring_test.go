package host

import (
	"sync"
	"testing"

	"github.com/statustrace/statustrace/event"
)

// Concurrent producers, one consumer: every accepted value comes out once,
// each producer's values in order, and rejected pushes are exactly the
// ones that met a full ring.
func TestRingConcurrent(t *testing.T) {
	r := newRing(64)
	const producers, each = 4, 20000
	accepted := make([]int, producers)
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				tr := event.Transition{Seq: uint64(p)<<32 | uint64(i), Attempt: uint32(p)}
				if _, ok := r.push(&tr); ok {
					accepted[p]++
				}
			}
		}(p)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	last := make([]int64, producers)
	for i := range last {
		last[i] = -1
	}
	got := 0
	var tr event.Transition
	for finished := false; ; {
		if r.pop(&tr) {
			p, i := int(tr.Seq>>32), int64(tr.Seq&0xffffffff)
			if uint32(p) != tr.Attempt || i <= last[p] {
				t.Fatalf("producer %d: %d after %d (torn or reordered)", p, i, last[p])
			}
			last[p] = i
			got++
			continue
		}
		if finished {
			break
		}
		select {
		case <-done:
			finished = true // one more pass to drain
		default:
		}
	}
	total := 0
	for _, a := range accepted {
		total += a
	}
	if got != total || r.pushed() != uint64(total) || r.depth() != 0 {
		t.Fatalf("popped %d, accepted %d, pushed %d, depth %d", got, total, r.pushed(), r.depth())
	}
}

func TestRingFull(t *testing.T) {
	r := newRing(5) // rounds up to 8
	tr := event.Transition{Keys: event.Keys{RequestID: "x"}}
	for i := 0; i < 8; i++ {
		if _, ok := r.push(&tr); !ok {
			t.Fatalf("push %d refused", i)
		}
	}
	if _, ok := r.push(&tr); ok {
		t.Fatal("push into a full ring accepted")
	}
	var out event.Transition
	if !r.pop(&out) || out.RequestID != "x" {
		t.Fatal("pop")
	}
	if _, ok := r.push(&tr); !ok {
		t.Fatal("push after pop refused")
	}
}
