package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/scheduler/api"
	"github.com/statustrace/statustrace/scheduler/internal/store"
	"github.com/statustrace/statustrace/scheduler/riverstatus"
)

// terminateArgs asks the node running an event to terminate it. It goes to
// that node's control queue, which only that node works.
type terminateArgs struct {
	JobID     int64             `json:"job_id"`
	RequestID string            `json:"rid"`
	Mode      api.TerminateMode `json:"mode"`
	GraceMS   int64             `json:"grace_ms"` // -1: the function's default
	Hops      int               `json:"hops"`
}

func (terminateArgs) Kind() string { return "statustrace_terminate" }

const (
	// maxHops bounds forwarding between nodes while an event moves.
	maxHops = 3
	// controlPatience is how long a terminate request keeps looking for a
	// call that River says runs here but that is not (yet, or any more) in
	// the registry: the moment between locking a job and calling, or between
	// the call's end and River recording it.
	controlPatience = 30 * time.Second
)

// Terminate stops an event: a waiting one is ABORTED at once; a running one
// is told to stop gracefully (TERMINATING, then ABORTED when the call ends or
// the grace period is over) or at once (ABORTED).
func (s *Scheduler) Terminate(ctx context.Context, req api.TerminateRequest) (api.TerminateResult, error) {
	res := api.TerminateResult{RequestID: req.RequestID, Mode: req.Mode}
	if req.Mode != api.Graceful && req.Mode != api.Immediate {
		return res, fmt.Errorf("%w: terminate mode %q", api.ErrInvalid, req.Mode)
	}
	row, err := s.jobByRequestID(ctx, req.RequestID)
	if err != nil {
		return res, err
	}
	a := terminateArgs{JobID: row.ID, RequestID: req.RequestID, Mode: req.Mode, GraceMS: -1}
	if req.Grace != nil {
		a.GraceMS = req.Grace.Milliseconds()
	}
	state, err := s.terminate(ctx, row, a)
	res.State = state.String()
	return res, err
}

func (s *Scheduler) jobByRequestID(ctx context.Context, requestID string) (*rivertype.JobRow, error) {
	id, err := s.store.JobID(ctx, requestID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: event %s", api.ErrNotFound, requestID)
	}
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	row, err := s.client.JobGet(ctx, id)
	if errors.Is(err, rivertype.ErrNotFound) {
		return nil, fmt.Errorf("%w: event %s", api.ErrNotFound, requestID)
	}
	if err != nil {
		return nil, fmt.Errorf("scheduler: get job: %w", err)
	}
	return row, nil
}

// terminate acts on the job as row shows it and returns the event's state.
func (s *Scheduler) terminate(ctx context.Context, row *rivertype.JobRow, a terminateArgs) (event.State, error) {
	switch row.State {
	case rivertype.JobStateCompleted, rivertype.JobStateDiscarded, rivertype.JobStateCancelled:
		return riverstatus.StateOf(row), fmt.Errorf("%w: %s is %s", api.ErrEnded, a.RequestID, riverstatus.StateOf(row))
	case rivertype.JobStateRunning:
		return s.terminateRunning(ctx, row, a)
	}
	// Waiting: River cancels it in one statement, unless it has just started.
	out, err := s.client.JobCancel(ctx, row.ID)
	if err != nil {
		return event.StateNone, fmt.Errorf("scheduler: cancel job: %w", err)
	}
	switch out.State {
	case rivertype.JobStateCancelled:
		s.tracker.Aborted(out, riverstatus.CodeTerminated, fmt.Sprintf("%s (%s)", errTerminated, a.Mode))
		return event.StateAborted, nil
	case rivertype.JobStateRunning:
		// It started in between; River now cancels the attempt at once and
		// the worker reports ABORTED.
		return event.StateRunning, nil
	default:
		return riverstatus.StateOf(out), fmt.Errorf("%w: %s is %s", api.ErrEnded, a.RequestID, riverstatus.StateOf(out))
	}
}

// terminateRunning reaches the call where it runs: here directly, elsewhere
// through the node's control queue.
func (s *Scheduler) terminateRunning(ctx context.Context, row *rivertype.JobRow, a terminateArgs) (event.State, error) {
	after := event.StateTerminating
	if a.Mode == api.Immediate {
		after = event.StateRunning // ABORTED follows as soon as the call stops
	}
	if c := s.calls.get(row.ID); c != nil && c.terminate(a.Mode, s.grace(c.f, a)) {
		return after, nil
	}
	owner := ""
	if n := len(row.AttemptedBy); n > 0 {
		owner = row.AttemptedBy[n-1]
	}
	if owner == "" || a.Hops >= maxHops {
		return event.StateRunning, fmt.Errorf("scheduler: cannot reach the node running %s (attempted by %q)", a.RequestID, owner)
	}
	a.Hops++
	if _, err := s.client.Insert(ctx, a, &river.InsertOpts{Queue: controlQueue(owner), MaxAttempts: 5}); err != nil {
		return event.StateRunning, fmt.Errorf("scheduler: send terminate to %s: %w", owner, err)
	}
	return after, nil
}

func (s *Scheduler) grace(f *function, a terminateArgs) time.Duration {
	if a.GraceMS < 0 {
		return f.cfg.TerminateGrace.D()
	}
	return time.Duration(a.GraceMS) * time.Millisecond
}

// terminateWorker works this node's control queue.
type terminateWorker struct {
	river.WorkerDefaults[terminateArgs]
	s *Scheduler
}

func (w *terminateWorker) Work(ctx context.Context, job *river.Job[terminateArgs]) error {
	s, a := w.s, job.Args
	if c := s.calls.get(a.JobID); c != nil && c.terminate(a.Mode, s.grace(c.f, a)) {
		return nil
	}
	row, err := s.client.JobGet(ctx, a.JobID)
	if errors.Is(err, rivertype.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get job %d: %w", a.JobID, err)
	}
	if row.State == rivertype.JobStateRunning && len(row.AttemptedBy) > 0 && row.AttemptedBy[len(row.AttemptedBy)-1] == s.clientID {
		if time.Since(job.CreatedAt) > controlPatience {
			s.log.Warn("terminate request gave up: the call never showed up on this node", "request_id", a.RequestID)
			return nil
		}
		return river.JobSnooze(20 * time.Millisecond)
	}
	if _, err := s.terminate(ctx, row, a); err != nil && !errors.Is(err, api.ErrEnded) {
		return err
	}
	return nil
}
