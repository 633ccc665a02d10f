package spans

import (
	"testing"

	"github.com/statustrace/statustrace/event"
)

func TestStatesLRU(t *testing.T) {
	s := newStates(3)
	for _, k := range []string{"a", "b", "c"} {
		s.get(k).firstTime = 1
	}
	s.get("a") // a is now the most recent; b is the coldest
	s.get("d") // evicts b
	if _, ok := s.idx["b"]; ok || s.len() != 3 {
		t.Fatalf("b not evicted: %v", s.idx)
	}
	s.retire("a") // a's event ended: next to go
	s.get("e")    // evicts a, not c
	if _, ok := s.idx["a"]; ok {
		t.Fatal("retired entry not evicted first")
	}
	if _, ok := s.idx["c"]; !ok {
		t.Fatal("c evicted before the retired a")
	}
	if s.get("c").firstTime != 1 || s.get("e").firstTime != 0 {
		t.Fatal("state not kept, or not fresh")
	}
}

func TestPreviousTransition(t *testing.T) {
	var e eventState
	for seq := uint64(1); seq <= 6; seq++ { // more than recentN
		e.remember(seen{seq: seq, state: event.State(seq%3 + 1), time: int64(seq * 10)})
	}
	e.remember(seen{seq: 5, state: event.State(5%3 + 1), time: 50}) // re-sent: no second entry
	if p, ok := e.previous(6, event.State(5%3+1)); !ok || p.seq != 5 {
		t.Fatalf("previous of 6: %+v %v", p, ok)
	}
	if _, ok := e.previous(6, event.StateFinished); ok {
		t.Fatal("predecessor found although its state does not match from_state")
	}
	if _, ok := e.previous(2, event.State(1%3+1)); ok {
		t.Fatal("seq 1 was pushed out of the ring but found")
	}
}
