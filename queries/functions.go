package queries

import (
	"context"
	"fmt"
	"time"

	"github.com/statustrace/statustrace/event"
)

// FunctionSummary is one function's activity in a window: what the
// console's Functions page and GET /v1/functions show.
type FunctionSummary struct {
	Namespace string            `json:"namespace"`
	Function  string            `json:"function"`
	Accepted  uint64            `json:"accepted"`  // events accepted in the window
	Attempts  uint64            `json:"attempts"`  // attempts started
	Retries   uint64            `json:"retries"`   // transitions into RETRYING
	ByStatus  map[string]uint64 `json:"by_status"` // events that ended in the window, by public status
	ByState   map[string]uint64 `json:"by_state"`  // transitions into each detailed state
	// FailureRate is FAILED (incl. EXPIRED) over all events that ended.
	FailureRate float64 `json:"failure_rate"`
	// Series is the number of events accepted per step (a small chart).
	Series    []FunctionPoint `json:"series"`
	Durations *Durations      `json:"durations,omitempty"` // only when asked for
}

// FunctionPoint is one step of a function's series.
type FunctionPoint struct {
	Time     time.Time `json:"time"`
	Accepted uint64    `json:"accepted"`
	Ended    uint64    `json:"ended"`
	Failed   uint64    `json:"failed"`
}

// MaxFunctions bounds a Functions answer (and the duration queries it may
// run, one per function).
const MaxFunctions = 200

// Functions summarizes every function with transitions in the window, by
// namespace and name, from the per-minute statistics. With durations, each
// function's queue-wait and run percentiles are added (Durations per
// function, from the per-minute digests: one more query per function).
func (s *Store) Functions(ctx context.Context, sc Scope, q StatsQuery, durations bool) ([]FunctionSummary, error) {
	if err := sc.validate(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	a := windowArgs(sc, q.Namespace, q.Function, q.Qualifier, q.Window).add("step_s", uint32(q.Step/time.Second))
	rows, err := s.conn.Query(ctx, compiled.sql["function_stats"], a...)
	if err != nil {
		return nil, fmt.Errorf("function statistics: %w", err)
	}
	defer rows.Close()
	out := []FunctionSummary{}
	for rows.Next() {
		var (
			ns, fn, state string
			t             int64
			n             uint64
		)
		if err := rows.Scan(&ns, &fn, &t, &state, &n); err != nil {
			return nil, fmt.Errorf("function statistics row: %w", err)
		}
		k := len(out) - 1
		if k < 0 || out[k].Namespace != ns || out[k].Function != fn {
			if len(out) == MaxFunctions {
				break
			}
			out = append(out, FunctionSummary{Namespace: ns, Function: fn,
				ByStatus: publicZero(), ByState: map[string]uint64{}, Series: []FunctionPoint{}})
			k++
		}
		f := &out[k]
		f.ByState[state] += n
		if p := len(f.Series); p == 0 || f.Series[p-1].Time.Unix() != t {
			f.Series = append(f.Series, FunctionPoint{Time: time.Unix(t, 0).UTC()})
		}
		pt := &f.Series[len(f.Series)-1]
		if ps, err := event.ParseState(state); err == nil {
			switch {
			case ps == event.StateQueued:
				pt.Accepted += n
			case ps.Terminal():
				pt.Ended += n
				if ps.Public() == event.StateFailed.Public() {
					pt.Failed += n
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("function statistics rows: %w", err)
	}
	for i := range out {
		f := &out[i]
		f.Accepted, f.Attempts, f.Retries = countStates(f.ByState, f.ByStatus)
		f.FailureRate = failureRate(f.ByState)
		if durations {
			fq := q
			fq.Namespace, fq.Function = f.Namespace, f.Function
			d, err := s.Durations(ctx, sc, fq)
			if err != nil {
				return nil, fmt.Errorf("function %s/%s: %w", f.Namespace, f.Function, err)
			}
			f.Durations = d
		}
	}
	return out, nil
}

// publicZero is a by-status map with every terminal public status at 0.
func publicZero() map[string]uint64 {
	m := map[string]uint64{}
	for s := event.StateQueued; s.Valid(); s++ {
		if s.Terminal() {
			m[s.Public()] = 0
		}
	}
	return m
}

// countStates derives accepted events, attempts and retries from counts of
// transitions per detailed state, and adds ended events to byStatus.
func countStates(byState, byStatus map[string]uint64) (accepted, attempts, retries uint64) {
	for state, n := range byState {
		ps, err := event.ParseState(state)
		if err != nil {
			continue
		}
		switch {
		case ps == event.StateQueued:
			accepted += n
		case ps == event.StateRunning:
			attempts += n
		case ps == event.StateRetrying:
			retries += n
		case ps.Terminal():
			byStatus[ps.Public()] += n
		}
	}
	return accepted, attempts, retries
}
