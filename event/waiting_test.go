package event

import "testing"

func TestWaiting(t *testing.T) {
	got := WaitingStates()
	if len(got) != 2 || got[0] != StateQueued || got[1] != StateRetrying {
		t.Fatalf("WaitingStates() = %v", got)
	}
	for s := StateQueued; s.Valid(); s++ {
		if s.Waiting() && s.Terminal() {
			t.Errorf("%s is both waiting and terminal", s)
		}
	}
}
