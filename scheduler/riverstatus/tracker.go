package riverstatus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/statustrace/statustrace/event"
)

// Reporter receives transitions. It must never block: plugin/host's
// Reporter buffers and drops (and counts) rather than wait.
type Reporter interface {
	Report(t event.Transition)
}

// Error codes the tracker puts on transitions when the error carries none.
const (
	CodeJobError   = "JobError"
	CodePanic      = "Panic"
	CodeExpired    = "MaxEventAgeExceeded"
	CodeTerminated = "Terminated"
)

// ErrExpired is the cause of a work context cancelled at the event's max age.
var ErrExpired = errors.New("max event age reached")

// Coder is implemented by errors that carry an error code for transitions.
type Coder interface {
	ErrorCode() string
}

// Options configure a Tracker.
type Options struct {
	// Reporter receives the transitions; nil reports nothing.
	Reporter Reporter
	// Node is put on every transition.
	Node string
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

// Tracker maps River's job lifecycle to event transitions. It is River
// worker middleware (install it in river.Config.Middleware); Queued and
// Aborted cover the changes that happen outside a worker.
type Tracker struct {
	river.MiddlewareDefaults
	rep  Reporter
	node string
	now  func() time.Time
}

// New returns a Tracker.
func New(opts Options) *Tracker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Tracker{rep: opts.Reporter, node: opts.Node, now: opts.Now}
}

var _ rivertype.WorkerMiddleware = (*Tracker)(nil)

// Queued reports QUEUED for a job. Call it once the insert has committed,
// never inside the inserting transaction: a rolled back insert is no event.
// at is when the event was accepted: take it before the insert, because a
// worker may start the job (and report RUNNING) before Queued is called.
func (t *Tracker) Queued(job *rivertype.JobRow, at time.Time) {
	if ev, ok := FromJob(job); ok {
		t.emitAt(&ev, at, 0, PhaseStart, event.StateNone, event.StateQueued, "", "")
	}
}

// Aborted reports ABORTED for a job that was cancelled while waiting: pass
// the row returned by Client.JobCancel when its State is cancelled and the job
// was not running (a running job is reported by the middleware instead).
func (t *Tracker) Aborted(job *rivertype.JobRow, code, msg string) {
	if ev, ok := FromJob(job); ok {
		t.emit(&ev, job.Attempt, PhaseIdle, waitingState(job.Attempt), event.StateAborted, code, msg)
	}
}

// Work reports RUNNING when an attempt starts and its outcome when it ends.
// An event past its max age is EXPIRED without being worked; one that
// reaches it while running has its work context cancelled (cause ErrExpired)
// and is EXPIRED instead of retried.
func (t *Tracker) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) (err error) {
	ev, ok := FromJob(job)
	if !ok {
		return doInner(ctx)
	}
	expires, hasExpiry := ev.Expires()
	if hasExpiry && !t.now().Before(expires) {
		// River already counted this attempt; the event waited after attempt-1.
		prev := job.Attempt - 1
		t.emit(&ev, prev, PhaseIdle, waitingState(prev), event.StateExpired, CodeExpired, ErrExpired.Error())
		return Stop(event.StateExpired, CodeExpired, ErrExpired)
	}

	from := event.StateQueued
	if job.Attempt > 1 {
		from = event.StateRetrying
	}
	a := &attempt{t: t, ev: &ev, job: job, state: event.StateRunning}
	t.emit(&ev, job.Attempt, PhaseStart, from, event.StateRunning, "", "")

	wctx := context.WithValue(ctx, attemptKey{}, a)
	if hasExpiry {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadlineCause(wctx, expires, ErrExpired)
		defer cancel()
	}

	defer func() {
		if p := recover(); p != nil {
			to := event.StateRetrying
			if job.Attempt >= job.MaxAttempts {
				to = event.StateFailed
			}
			a.end(to, CodePanic, fmt.Sprint(p))
			panic(p)
		}
	}()

	err = doInner(wctx)

	to, code, msg, err := t.classify(ctx, wctx, job, err)
	if to != event.StateNone {
		a.end(to, code, msg)
	}
	return err
}

// classify maps a work result to the transition it causes (StateNone: none)
// and the error River should see.
func (t *Tracker) classify(ctx, wctx context.Context, job *rivertype.JobRow, err error) (event.State, string, string, error) {
	var stateErr *StateError
	switch {
	case err == nil:
		return event.StateFinished, "", "", nil
	case errors.As(err, &stateErr):
		return stateErr.State, stateErr.code(), errMessage(stateErr.Err), err
	case errors.Is(err, &rivertype.JobSnoozeError{}):
		// A snooze is neither progress nor failure: River gives the attempt
		// back, and the next start reports RUNNING again with the same seq.
		return event.StateNone, "", "", err
	case errors.Is(context.Cause(ctx), rivertype.ErrJobCancelledRemotely):
		return event.StateAborted, CodeTerminated, "cancelled remotely", err
	case errors.Is(context.Cause(wctx), ErrExpired) && ctx.Err() == nil:
		return event.StateExpired, CodeExpired, ErrExpired.Error(), Stop(event.StateExpired, CodeExpired, err)
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.Cause(ctx))):
		// The client is stopping (the only other reason River cancels a work
		// context; net/http returns the cause, not context.Canceled): River
		// puts the job back without counting the attempt, and it will be
		// RUNNING again elsewhere or after a restart.
		return event.StateNone, "", "", err
	case errors.Is(err, &rivertype.JobCancelError{}):
		return event.StateFailed, codeOf(err), errMessage(err), err
	case job.Attempt >= job.MaxAttempts:
		return event.StateFailed, codeOf(err), errMessage(err), err
	default:
		return event.StateRetrying, codeOf(err), errMessage(err), err
	}
}

func (t *Tracker) emit(ev *Event, attempt int, p Phase, from, to event.State, code, msg string) {
	if t.rep == nil || ev.Untraced {
		return
	}
	t.emitAt(ev, t.now(), attempt, p, from, to, code, msg)
}

func (t *Tracker) emitAt(ev *Event, at time.Time, attempt int, p Phase, from, to event.State, code, msg string) {
	if t.rep == nil || ev.Untraced {
		return
	}
	t.rep.Report(event.Transition{
		Keys:         ev.Keys(),
		Seq:          Seq(attempt, p),
		Attempt:      uint32(max(attempt, 0)),
		From:         from,
		To:           to,
		TimeUnixNano: at.UnixNano(),
		ErrorCode:    event.Truncate(code, event.MaxKeyBytes),
		ErrorMessage: event.Truncate(msg, event.MaxErrorMessageBytes),
		InvokeType:   ev.InvokeType,
		Node:         t.node,
		TraceParent:  ev.TraceParent,
	})
}

type attemptKey struct{}

// attempt is the running attempt's state, shared between the worker and
// whoever terminates it, so TERMINATING can never follow the outcome.
type attempt struct {
	t     *Tracker
	ev    *Event
	job   *rivertype.JobRow
	mu    sync.Mutex
	state event.State // RUNNING or TERMINATING
	done  bool
}

func (a *attempt) end(to event.State, code, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		return
	}
	a.done = true
	a.t.emit(a.ev, a.job.Attempt, PhaseEnd, a.state, to, code, msg)
}

// Terminating reports TERMINATING for the attempt running under ctx (a work
// context, or one derived from it): a graceful terminate has begun. It
// returns false, reporting nothing, when ctx is not a tracked work context,
// the attempt has already ended, or it is already terminating.
func Terminating(ctx context.Context) bool {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done || a.state == event.StateTerminating {
		return false
	}
	a.t.emit(a.ev, a.job.Attempt, PhaseTerminating, a.state, event.StateTerminating, "", "")
	a.state = event.StateTerminating
	return true
}

// StateError ends an event in a chosen terminal state. Create it with Stop.
type StateError struct {
	State event.State
	Code  string
	Err   error
}

// stateMarker is how a StateError shows in River's stored attempt errors, so
// StateOf can tell ABORTED from EXPIRED and FAILED among cancelled jobs.
const stateMarker = "statustrace-state="

func (e *StateError) Error() string {
	return fmt.Sprintf("%s%s: %v", stateMarker, e.State, e.Err)
}

func (e *StateError) Unwrap() error { return e.Err }

func (e *StateError) code() string {
	if e.Code != "" {
		return e.Code
	}
	return codeOf(e.Err)
}

// Stop returns the error a worker returns to end its event in state
// (FAILED, ABORTED or EXPIRED) without further attempts.
func Stop(state event.State, code string, err error) error {
	if err == nil {
		err = errors.New(strings.ToLower(state.String()))
	}
	return rivertype.JobCancel(&StateError{State: state, Code: code, Err: err})
}

// StateOf is the detailed state a job row stands for, as far as the row
// tells: a terminate in progress shows as RUNNING.
func StateOf(job *rivertype.JobRow) event.State {
	switch job.State {
	case rivertype.JobStateRunning:
		return event.StateRunning
	case rivertype.JobStateRetryable:
		return event.StateRetrying
	case rivertype.JobStateCompleted:
		return event.StateFinished
	case rivertype.JobStateDiscarded:
		return event.StateFailed
	case rivertype.JobStateCancelled:
		if n := len(job.Errors); n > 0 {
			msg := job.Errors[n-1].Error
			if i := strings.Index(msg, stateMarker); i >= 0 {
				name, _, _ := strings.Cut(msg[i+len(stateMarker):], ":")
				if s, err := event.ParseState(name); err == nil && s.Terminal() {
					return s
				}
			}
		}
		return event.StateAborted
	default: // available, scheduled, pending
		return waitingState(job.Attempt)
	}
}

// ErrorText is a stored attempt error as a person reads it: without River's
// cancel prefix and the state marker StateOf reads.
func ErrorText(stored string) string {
	s := strings.TrimPrefix(stored, "JobCancelError: ")
	if rest, ok := strings.CutPrefix(s, stateMarker); ok {
		if _, msg, ok := strings.Cut(rest, ": "); ok {
			return msg
		}
	}
	return s
}

// ClampRetry moves a retry time that falls after the event's max age back
// to it, so the event is picked up and EXPIRED on time rather than late.
func ClampRetry(job *rivertype.JobRow, next time.Time) time.Time {
	ev, ok := FromJob(job)
	if !ok {
		return next
	}
	expires, ok := ev.Expires()
	if !ok || !next.After(expires) {
		return next
	}
	// River rejects retry times in the past; a moment from now is "at once".
	return maxTime(expires, time.Now().Add(time.Millisecond))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// RetryPolicy wraps a River retry policy with ClampRetry.
type RetryPolicy struct {
	Policy river.ClientRetryPolicy
}

// NextRetry implements river.ClientRetryPolicy.
func (p RetryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	return ClampRetry(job, p.Policy.NextRetry(job))
}

// Insert inserts a job carrying ev and, once the insert has committed,
// reports QUEUED (timed before the insert). A unique job skipped as a
// duplicate reports nothing.
func Insert[TTx any](ctx context.Context, t *Tracker, client *river.Client[TTx], args river.JobArgs, ev Event, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	o := river.InsertOpts{}
	if opts != nil {
		o = *opts
	}
	md, err := Metadata(ev, o.Metadata)
	if err != nil {
		return nil, err
	}
	o.Metadata = md
	at := t.now()
	res, err := client.Insert(ctx, args, &o)
	if err != nil {
		return nil, fmt.Errorf("riverstatus: insert: %w", err)
	}
	if !res.UniqueSkippedAsDuplicate {
		t.Queued(res.Job, at)
	}
	return res, nil
}

func codeOf(err error) string {
	var c Coder
	if errors.As(err, &c) && c.ErrorCode() != "" {
		return c.ErrorCode()
	}
	return CodeJobError
}

// errMessage unwraps River's cancel wrapper so its prefix does not end up in
// the stored message.
func errMessage(err error) string {
	if err == nil {
		return ""
	}
	var ce *rivertype.JobCancelError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		err = ce.Unwrap()
	}
	return err.Error()
}
