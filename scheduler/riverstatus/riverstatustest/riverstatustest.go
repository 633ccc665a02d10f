// Package riverstatustest holds test helpers for code that reports
// transitions through riverstatus.
package riverstatustest

import (
	"sort"
	"sync"

	"github.com/statustrace/statustrace/event"
)

// Recorder is a Reporter that keeps every transition. Safe for concurrent use.
type Recorder struct {
	mu sync.Mutex
	ts []event.Transition
}

// Report records t.
func (r *Recorder) Report(t event.Transition) {
	r.mu.Lock()
	r.ts = append(r.ts, t)
	r.mu.Unlock()
}

// Of returns the transitions of one event in seq order: reports from
// different goroutines and nodes may arrive in any order, and seq is the
// order, as in storage.
func (r *Recorder) Of(requestID string) []event.Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event.Transition
	for _, t := range r.ts {
		if t.RequestID == requestID {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// Count returns how many transitions were recorded.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ts)
}
