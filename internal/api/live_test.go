package api

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/statustrace/statustrace/queries"
)

// changes is a ChangeSource that returns a fixed set of events and counts
// polls per filter.
type changes struct {
	mu    sync.Mutex
	polls map[string]int
	evs   []queries.Event
}

func (c *changes) Changes(_ context.Context, sc queries.Scope, f queries.ListFilter, sinceNs int64, _ int) ([]queries.Event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.polls[sc.Tenant+"/"+f.Function]++
	var out []queries.Event
	for _, e := range c.evs {
		if e.Tenant == sc.Tenant && e.LastTime.UnixNano() > sinceNs {
			out = append(out, e)
		}
	}
	return out, nil
}

// TestHubSharesPollers: subscribers of one stream key share one poller;
// another key gets its own; the last unsubscribe stops it. Every subscriber
// gets each change once even though every poll looks back.
func TestHubSharesPollers(t *testing.T) {
	now := time.Now()
	src := &changes{polls: map[string]int{}, evs: []queries.Event{
		{Tenant: "a", RequestID: "r1", LastSeq: 3, LastTime: now.Add(-time.Second)},
		{Tenant: "b", RequestID: "r2", LastSeq: 1, LastTime: now.Add(-time.Second)},
	}}
	h := NewHub(src, 10*time.Millisecond, nil)
	defer h.Close()
	sc := queries.Scope{Tenant: "a"}
	ch1, stop1 := h.Subscribe(sc, queries.ListFilter{Function: "f"})
	ch2, stop2 := h.Subscribe(sc, queries.ListFilter{Function: "f"})
	ch3, stop3 := h.Subscribe(sc, queries.ListFilter{Function: "g"})
	if n := h.Streams(); n != 2 {
		t.Fatalf("%d pollers for 2 keys", n)
	}
	for i, ch := range []<-chan queries.Event{ch1, ch2, ch3} {
		select {
		case e := <-ch:
			if e.RequestID != "r1" {
				t.Errorf("subscriber %d got %+v", i, e)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("subscriber %d got nothing", i)
		}
	}
	time.Sleep(100 * time.Millisecond) // several more polls, all looking back
	for i, ch := range []<-chan queries.Event{ch1, ch2, ch3} {
		select {
		case e := <-ch:
			t.Errorf("subscriber %d got %+v twice", i, e)
		default:
		}
	}
	stop1()
	if n := h.Streams(); n != 2 {
		t.Errorf("%d pollers after one of two subscribers left", n)
	}
	stop2()
	stop3()
	if n := h.Streams(); n != 0 {
		t.Errorf("%d pollers after everyone left", n)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.polls["b/f"] != 0 || src.polls["a/f"] == 0 {
		t.Errorf("polls %v", src.polls)
	}
}
