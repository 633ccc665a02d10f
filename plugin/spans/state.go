package spans

import "github.com/statustrace/statustrace/event"

// recentN is how many past transitions an event remembers: enough to find
// the predecessor of a transition that is re-sent or arrives slightly out
// of order.
const recentN = 4

type seen struct {
	seq   uint64
	state event.State // the state entered
	time  int64
}

// eventState is what the plugin remembers of one event: when it started and
// its last few transitions. It is all a state interval span needs.
type eventState struct {
	key        string
	firstTime  int64 // time of the first transition (From == none); 0 if unseen
	recent     [recentN]seen
	n          int // filled entries of recent (ring, newest at (head-1))
	head       int
	prev, next int32 // LRU list, indexes into states.nodes; -1 = none
}

// previous returns the remembered transition with the highest seq below seq
// that entered from, if any.
func (e *eventState) previous(seq uint64, from event.State) (seen, bool) {
	var best seen
	found := false
	for i := 0; i < e.n; i++ {
		s := e.recent[i]
		if s.seq < seq && (!found || s.seq > best.seq) {
			best, found = s, true
		}
	}
	if !found || best.state != from {
		return seen{}, false
	}
	return best, true
}

func (e *eventState) remember(s seen) {
	for i := 0; i < e.n; i++ {
		if e.recent[i].seq == s.seq {
			e.recent[i] = s // a re-sent transition: keep one entry
			return
		}
	}
	e.recent[e.head] = s
	e.head = (e.head + 1) % recentN
	if e.n < recentN {
		e.n++
	}
}

// states is a bounded LRU of eventState by request ID. Entries live in one
// slice linked by index, so steady state does not allocate per event
// beyond the map entry until the LRU is full. Events that reached a terminal state are moved to
// the cold end, so they go first but can still serve a re-sent batch.
type states struct {
	idx        map[string]int32
	nodes      []eventState
	head, tail int32 // head = most recently used, tail = next to evict
	max        int
}

func newStates(max int) *states {
	if max < 1 {
		max = 1
	}
	return &states{idx: make(map[string]int32), head: -1, tail: -1, max: max}
}

func (s *states) len() int { return len(s.idx) }

// get returns the state of key, creating it (and evicting the coldest) if
// needed. The pointer is valid until the next call.
func (s *states) get(key string) *eventState {
	if i, ok := s.idx[key]; ok {
		s.moveToFront(i)
		return &s.nodes[i]
	}
	var i int32
	if len(s.nodes) < s.max {
		s.nodes = append(s.nodes, eventState{})
		i = int32(len(s.nodes) - 1)
	} else {
		i = s.tail
		s.unlink(i)
		delete(s.idx, s.nodes[i].key)
	}
	s.nodes[i] = eventState{key: key, prev: -1, next: -1}
	s.idx[key] = i
	s.pushFront(i)
	return &s.nodes[i]
}

// retire moves key to the cold end: its event is over.
func (s *states) retire(key string) {
	i, ok := s.idx[key]
	if !ok || i == s.tail {
		return
	}
	s.unlink(i)
	n := &s.nodes[i]
	n.prev, n.next = s.tail, -1
	if s.tail >= 0 {
		s.nodes[s.tail].next = i
	}
	s.tail = i
	if s.head < 0 {
		s.head = i
	}
}

func (s *states) moveToFront(i int32) {
	if s.head == i {
		return
	}
	s.unlink(i)
	s.pushFront(i)
}

func (s *states) pushFront(i int32) {
	n := &s.nodes[i]
	n.prev, n.next = -1, s.head
	if s.head >= 0 {
		s.nodes[s.head].prev = i
	}
	s.head = i
	if s.tail < 0 {
		s.tail = i
	}
}

func (s *states) unlink(i int32) {
	n := &s.nodes[i]
	if n.prev >= 0 {
		s.nodes[n.prev].next = n.next
	} else {
		s.head = n.next
	}
	if n.next >= 0 {
		s.nodes[n.next].prev = n.prev
	} else {
		s.tail = n.prev
	}
	n.prev, n.next = -1, -1
}
