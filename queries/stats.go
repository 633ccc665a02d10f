package queries

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
)

// Stats summarizes a window from the pre-aggregated per-minute table: the
// read is proportional to functions x minutes x states, not to events.
//
// Every event enters QUEUED once, RUNNING once per attempt, RETRYING once per
// retry and one terminal state once, so the transition counts are also event
// counts: Accepted events were accepted in the window, ByStatus counts the
// events that ended in it.
type Stats struct {
	From        time.Time         `json:"from"`
	To          time.Time         `json:"to"`
	StepSeconds int64             `json:"step_seconds"`
	Accepted    uint64            `json:"accepted"`  // transitions into QUEUED
	Attempts    uint64            `json:"attempts"`  // transitions into RUNNING
	Retries     uint64            `json:"retries"`   // transitions into RETRYING
	ByStatus    map[string]uint64 `json:"by_status"` // FINISHED, FAILED (incl. EXPIRED), ABORTED: events that ended
	ByState     map[string]uint64 `json:"by_state"`  // transitions into each detailed state
	// FailureRate is FAILED (incl. EXPIRED) over all events that ended; 0
	// when none ended.
	FailureRate float64       `json:"failure_rate"`
	Series      []SeriesPoint `json:"series"`
	Errors      []ErrorCount  `json:"errors"`              // most frequent first, at most MaxErrorCodes
	Durations   *Durations    `json:"durations,omitempty"` // only when asked for
	// Backlog is, per function, what waits for a worker now (not in the
	// window: the present), where the reader asks for it (the API and the
	// CLI do); nil when not asked.
	Backlog []Backlog `json:"backlog"`
}

// SeriesPoint is one step of the series.
type SeriesPoint struct {
	Time        time.Time         `json:"time"`
	ByState     map[string]uint64 `json:"by_state"`
	FailureRate float64           `json:"failure_rate"`
}

// ErrorCount is how many transitions into State carried Code.
type ErrorCount struct {
	State string `json:"state"`
	Code  string `json:"code"`
	Count uint64 `json:"count"`
}

// MaxErrorCodes bounds Stats.Errors.
const MaxErrorCodes = 20

// Durations are percentiles of the time spent in a state, and of whole
// events.
type Durations struct {
	QueueWaits  uint64      `json:"queue_waits"`
	QueueWait   Percentiles `json:"queue_wait"` // QUEUED -> RUNNING
	Runs        uint64      `json:"runs"`
	Run         Percentiles `json:"run"` // each attempt: RUNNING -> next state
	RetryDelays uint64      `json:"retry_delays"`
	RetryDelay  Percentiles `json:"retry_delay"` // RETRYING -> RUNNING
	// RetryDelayP50 is RetryDelay.P50 (kept for readers of earlier answers).
	RetryDelayP50 time.Duration `json:"retry_delay_p50_ns"`
	EndToEnds     uint64        `json:"end_to_ends"`
	EndToEnd      Percentiles   `json:"end_to_end"` // first transition -> terminal state
	// MaxRelativeError bounds every percentile's relative error: from the
	// digests, schema.DigestRelError; 0 from the raw transitions.
	MaxRelativeError float64 `json:"max_relative_error"`
}

// Percentiles of a duration, in nanoseconds.
type Percentiles struct {
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
}

func failureRate(byState map[string]uint64) float64 {
	var failed, ended uint64
	for s, n := range byState {
		st, err := event.ParseState(s)
		if err != nil || !st.Terminal() {
			continue
		}
		ended += n
		if st.Public() == event.PublicFailed {
			failed += n
		}
	}
	if ended == 0 {
		return 0
	}
	return float64(failed) / float64(ended)
}

// Stats returns the statistics of a window.
func (s *Store) Stats(ctx context.Context, sc Scope, q StatsQuery) (*Stats, error) {
	if err := sc.validate(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	a := windowArgs(sc, q.Namespace, q.Function, q.Qualifier, q.Window).add("step_s", uint32(q.Step/time.Second))
	rows, err := s.conn.Query(ctx, compiled.sql["status_stats"], a...)
	if err != nil {
		return nil, fmt.Errorf("statistics: %w", err)
	}
	defer rows.Close()
	st := &Stats{
		From: q.Window.From.UTC(), To: q.Window.To.UTC(), StepSeconds: int64(q.Step / time.Second),
		ByStatus: map[string]uint64{},
		ByState:  map[string]uint64{},
		Series:   []SeriesPoint{},
		Errors:   []ErrorCount{},
	}
	for _, ts := range event.TerminalStates() {
		st.ByStatus[ts.Public()] = 0 // every terminal public status is reported, 0 or not
	}
	errs := map[[2]string]uint64{}
	for rows.Next() {
		var (
			t           int64
			state, code string
			n           uint64
		)
		if err := rows.Scan(&t, &state, &code, &n); err != nil {
			return nil, fmt.Errorf("statistics row: %w", err)
		}
		st.ByState[state] += n
		if k := len(st.Series); k == 0 || st.Series[k-1].Time.Unix() != t {
			st.Series = append(st.Series, SeriesPoint{Time: time.Unix(t, 0).UTC(), ByState: map[string]uint64{}})
		}
		st.Series[len(st.Series)-1].ByState[state] += n
		if code != "" {
			errs[[2]string{state, code}] += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("statistics rows: %w", err)
	}
	for state, n := range st.ByState {
		ps, err := event.ParseState(state)
		if err != nil {
			continue
		}
		switch {
		case ps == event.StateQueued:
			st.Accepted += n
		case ps == event.StateRunning:
			st.Attempts += n
		case ps == event.StateRetrying:
			st.Retries += n
		case ps.Terminal():
			st.ByStatus[ps.Public()] += n
		}
	}
	st.FailureRate = failureRate(st.ByState)
	for i := range st.Series {
		st.Series[i].FailureRate = failureRate(st.Series[i].ByState)
	}
	for k, n := range errs {
		st.Errors = append(st.Errors, ErrorCount{State: k[0], Code: k[1], Count: n})
	}
	sort.Slice(st.Errors, func(i, j int) bool {
		a, b := st.Errors[i], st.Errors[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.State != b.State {
			return a.State < b.State
		}
		return a.Code < b.Code
	})
	if len(st.Errors) > MaxErrorCodes {
		st.Errors = st.Errors[:MaxErrorCodes]
	}
	return st, nil
}

// Durations returns queue-wait, run, retry-delay and end-to-end percentiles
// of a window from the per-minute digests (sql/duration_digests.sql): the
// rows read do not grow with the number of events, duplicates count once,
// and each percentile is within schema.DigestRelError of the exact
// (nearest-rank) one over the durations the exporter could measure.
func (s *Store) Durations(ctx context.Context, sc Scope, q StatsQuery) (*Durations, error) {
	if err := sc.validate(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ctx, compiled.sql["duration_digests"], windowArgs(sc, q.Namespace, q.Function, q.Qualifier, q.Window)...)
	if err != nil {
		return nil, fmt.Errorf("durations: %w", err)
	}
	defer rows.Close()
	d := &Durations{MaxRelativeError: schema.DigestRelError}
	for rows.Next() {
		var kind string
		var bins map[uint16]uint64
		if err := rows.Scan(&kind, &bins); err != nil {
			return nil, fmt.Errorf("durations row: %w", err)
		}
		n, p := digestPercentiles(bins)
		switch kind {
		case schema.DurationQueueWait:
			d.QueueWaits, d.QueueWait = n, p
		case schema.DurationRun:
			d.Runs, d.Run = n, p
		case schema.DurationRetryDelay:
			d.RetryDelays, d.RetryDelay = n, p
		case schema.DurationEndToEnd:
			d.EndToEnds, d.EndToEnd = n, p
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("durations rows: %w", err)
	}
	d.RetryDelayP50 = d.RetryDelay.P50
	return d, nil
}

// digestPercentiles reads p50, p90 and p99 (nearest rank: the smallest
// duration with at least p of all at or below it) off a merged histogram.
func digestPercentiles(bins map[uint16]uint64) (uint64, Percentiles) {
	keys := make([]uint16, 0, len(bins))
	var n uint64
	for b, c := range bins {
		keys = append(keys, b)
		n += c
	}
	if n == 0 {
		return 0, Percentiles{}
	}
	slices.Sort(keys)
	at := func(p float64) time.Duration {
		rank := uint64(math.Ceil(p * float64(n)))
		rank = max(rank, 1)
		var seen uint64
		for _, b := range keys {
			if seen += bins[b]; seen >= rank {
				return time.Duration(math.Round(schema.DigestValue(b)))
			}
		}
		return time.Duration(math.Round(schema.DigestValue(keys[len(keys)-1])))
	}
	return n, Percentiles{P50: at(0.5), P90: at(0.9), P99: at(0.99)}
}

// DurationsFromTransitions computes what Durations returns (end to end
// aside) from the raw transitions of the window (sql/event_durations.sql):
// exact times between transitions, approximate quantiles, and a read that
// grows with the events in the window. For checks and one-off analysis.
func (s *Store) DurationsFromTransitions(ctx context.Context, sc Scope, q StatsQuery) (*Durations, error) {
	if err := sc.validate(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	var (
		d             Durations
		q50, q90, q99 float64
		r50, r90, r99 float64
		retry50       float64
	)
	err := s.conn.QueryRow(ctx, "SELECT * FROM ("+compiled.sql["event_durations"]+")",
		windowArgs(sc, q.Namespace, q.Function, q.Qualifier, q.Window)...).Scan(
		&d.QueueWaits, &q50, &q90, &q99, &d.Runs, &r50, &r90, &r99, &d.RetryDelays, &retry50)
	if err != nil {
		return nil, fmt.Errorf("durations: %w", err)
	}
	d.QueueWait = Percentiles{nsDur(q50), nsDur(q90), nsDur(q99)}
	d.Run = Percentiles{nsDur(r50), nsDur(r90), nsDur(r99)}
	d.RetryDelayP50 = nsDur(retry50)
	d.RetryDelay.P50 = d.RetryDelayP50
	return &d, nil
}

// nsDur converts a quantile (NaN when there were no values) to a Duration.
func nsDur(f float64) time.Duration {
	if f != f || f < 0 {
		return 0
	}
	return time.Duration(f)
}
