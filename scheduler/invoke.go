package scheduler

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/scheduler/api"
	"github.com/statustrace/statustrace/scheduler/config"
	"github.com/statustrace/statustrace/scheduler/riverstatus"
)

// invokeArgs is one invocation's River job. The event itself (request ID,
// keys, traceparent, expiry) is in the job's metadata, where riverstatus
// reads it.
type invokeArgs struct {
	Namespace   string `json:"ns"`
	Function    string `json:"fn"`
	RequestID   string `json:"rid" river:"unique"`
	ContentType string `json:"ct,omitempty"`
	Payload     []byte `json:"payload,omitempty"`
}

func (invokeArgs) Kind() string { return "statustrace_invoke" }

// Error codes of function calls.
const (
	CodeFunctionError       = "FunctionError"
	CodeFunctionTimeout     = "FunctionTimeout"
	CodeFunctionUnreachable = "FunctionUnreachable"
	CodeFunctionNotFound    = "FunctionNotFound"
)

var (
	errCallTimeout = errors.New("function timeout reached")
	errTerminated  = errors.New("terminated on request")
)

// callError is a failed function call; its code goes on the transition.
type callError struct {
	code string
	msg  string
	err  error // the transport error, if any
}

func (e *callError) Error() string     { return e.msg }
func (e *callError) ErrorCode() string { return e.code }

// Unwrap lets River see a call cut by its own stop (context.Canceled) and
// put the job back without counting the attempt.
func (e *callError) Unwrap() error { return e.err }

// Invoke accepts one asynchronous invocation: QPS check, enqueue, QUEUED.
func (s *Scheduler) Invoke(ctx context.Context, req api.InvokeRequest) (api.InvokeResult, error) {
	f := s.fns[req.Namespace+"/"+req.Function]
	if f == nil {
		return api.InvokeResult{}, fmt.Errorf("%w: function %s/%s", api.ErrNotFound, req.Namespace, req.Function)
	}
	// An account that may not invoke, or over the limit: refused before
	// anything exists, so no event either. Standing first: a refused
	// account must not use up the QPS allowance.
	if err := s.admit(ctx, f); err != nil {
		return api.InvokeResult{}, err
	}
	if f.limiter != nil && !f.limiter.Allow() {
		s.metrics.rejected.Add(ctx, 1, f.attrs, reasonQPS)
		return api.InvokeResult{}, fmt.Errorf("%w (%g/s)", api.ErrRateLimited, f.cfg.QPS)
	}
	rid := req.RequestID
	if rid == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return api.InvokeResult{}, fmt.Errorf("scheduler: request ID: %w", err)
		}
		rid = id.String()
	} else if !api.ValidRequestID(rid) {
		return api.InvokeResult{}, fmt.Errorf("%w: request ID %q", api.ErrInvalid, rid)
	}
	tp := req.TraceParent
	if tp == "" || !api.ValidTraceParent(tp) {
		tp = newTraceParent()
	}
	ev := riverstatus.Event{
		Tenant:      s.cfg.Tenant,
		Namespace:   f.cfg.Namespace,
		Function:    f.cfg.Name,
		Qualifier:   f.cfg.Qualifier,
		RequestID:   rid,
		InvokeType:  "async",
		TraceParent: tp,
		ExpiresAt:   time.Now().Add(f.cfg.MaxEventAge.D()).UnixNano(),
		Untraced:    !f.trace.Load(),
	}
	md, err := riverstatus.Metadata(ev, nil)
	if err != nil {
		return api.InvokeResult{}, fmt.Errorf("scheduler: %w", err)
	}
	acceptedAt := time.Now()
	res, err := s.client.Insert(ctx, invokeArgs{
		Namespace:   f.cfg.Namespace,
		Function:    f.cfg.Name,
		RequestID:   rid,
		ContentType: req.ContentType,
		Payload:     req.Payload,
	}, &river.InsertOpts{
		MaxAttempts: f.cfg.MaxAttempts(),
		Metadata:    md,
		// A request ID stays unique while its job is kept (job_retention).
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: rivertype.JobStates()},
	})
	if err != nil {
		return api.InvokeResult{}, fmt.Errorf("scheduler: enqueue: %w", err)
	}
	if res.UniqueSkippedAsDuplicate {
		return api.InvokeResult{}, fmt.Errorf("%w: %s", api.ErrDuplicate, rid)
	}
	// Client.Insert has committed: the event exists.
	s.tracker.Queued(res.Job, acceptedAt)
	s.metrics.accepted.Add(ctx, 1, f.attrs)
	return api.InvokeResult{RequestID: rid, State: event.StateQueued.String()}, nil
}

// newTraceParent starts a trace for an invocation that came without one.
func newTraceParent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	b[0] |= 1  // a trace ID must not be all zeros
	b[16] |= 1 // nor a span ID
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

// jobTimeout is River's backstop for one attempt: the call's own timeout
// plus a full grace period, so River never cuts an attempt short itself.
func jobTimeout(f *config.Function) time.Duration {
	return f.Timeout.D() + f.TerminateGrace.D() + 5*time.Second
}

type invokeWorker struct {
	river.WorkerDefaults[invokeArgs]
	s *Scheduler
}

func (w *invokeWorker) Timeout(job *river.Job[invokeArgs]) time.Duration {
	if f := w.s.fns[job.Args.Namespace+"/"+job.Args.Function]; f != nil {
		return jobTimeout(f.cfg)
	}
	return 0
}

// NextRetry is the function's backoff, pulled in to the event's expiry.
func (w *invokeWorker) NextRetry(job *river.Job[invokeArgs]) time.Time {
	f := w.s.fns[job.Args.Namespace+"/"+job.Args.Function]
	if f == nil {
		return time.Time{} // River's default policy
	}
	return riverstatus.ClampRetry(job.JobRow, time.Now().Add(f.cfg.Backoff.Delay(job.Attempt)))
}

func (w *invokeWorker) Work(ctx context.Context, job *river.Job[invokeArgs]) error {
	s := w.s
	f := s.fns[job.Args.Namespace+"/"+job.Args.Function]
	if f == nil {
		return riverstatus.Stop(event.StateFailed, CodeFunctionNotFound,
			fmt.Errorf("function %s/%s is not configured on node %s", job.Args.Namespace, job.Args.Function, s.cfg.Node))
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c := &call{s: s, f: f, jobID: job.ID, requestID: job.Args.RequestID, workCtx: ctx, cancel: cancel}
	s.calls.add(c)
	defer s.calls.remove(c)

	err := s.callFunction(cctx, f, job)
	if mode := c.finish(); mode != "" {
		return riverstatus.Stop(event.StateAborted, riverstatus.CodeTerminated, fmt.Errorf("%w (%s)", errTerminated, mode))
	}
	return err
}

// callFunction POSTs the payload to the function; any 2xx is success.
func (s *Scheduler) callFunction(ctx context.Context, f *function, job *river.Job[invokeArgs]) error {
	ev, _ := riverstatus.FromJob(job.JobRow)
	ctx, cancel := context.WithTimeoutCause(ctx, f.cfg.Timeout.D(), errCallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.cfg.Endpoint, bytes.NewReader(job.Args.Payload))
	if err != nil {
		return riverstatus.Stop(event.StateFailed, CodeFunctionUnreachable, fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("X-Request-Id", job.Args.RequestID)
	if ev.TraceParent != "" {
		req.Header.Set("traceparent", ev.TraceParent)
	}
	ct := job.Args.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("X-Statustrace-Attempt", strconv.Itoa(job.Attempt))

	resp, err := s.http.Do(req)
	if err != nil {
		if errors.Is(context.Cause(ctx), errCallTimeout) {
			return &callError{code: CodeFunctionTimeout, msg: fmt.Sprintf("no answer within the function timeout (%s)", f.cfg.Timeout)}
		}
		return &callError{code: CodeFunctionUnreachable, msg: err.Error(), err: err}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return &callError{code: CodeFunctionError, msg: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(snippet))}
}

// call is a function call in progress on this node, findable by job ID so
// a terminate request can reach it.
type call struct {
	s         *Scheduler
	f         *function
	jobID     int64
	requestID string
	workCtx   context.Context // the attempt's work context (riverstatus)
	cancel    context.CancelCauseFunc

	mu    sync.Mutex
	done  bool
	mode  api.TerminateMode
	timer *time.Timer
}

// terminate starts terminating the call; false if it has already ended.
func (c *call) terminate(mode api.TerminateMode, grace time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return false
	}
	switch {
	case mode == api.Immediate:
		c.mode = api.Immediate
		c.cancel(errTerminated)
	case c.mode != "":
		// Already terminating; a second graceful request changes nothing.
	default:
		c.mode = api.Graceful
		riverstatus.Terminating(c.workCtx)
		c.timer = time.AfterFunc(grace, func() { c.cancel(errTerminated) })
		if c.f.cfg.TerminateEndpoint != "" {
			f, rid := c.f, c.requestID
			c.s.notices.Go(func() { c.s.notifyTerminate(f, rid, grace) })
		}
	}
	return true
}

// finish marks the call ended and returns how it was terminated, if it was.
func (c *call) finish() api.TerminateMode {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	if c.timer != nil {
		c.timer.Stop()
	}
	return c.mode
}

// terminateNotice is the body POSTed to a function's terminate_endpoint.
type terminateNotice struct {
	RequestID     string `json:"request_id"`
	GracePeriodMS int64  `json:"grace_period_ms"`
}

// notifyTerminate tells the function that a graceful terminate began.
func (s *Scheduler) notifyTerminate(f *function, requestID string, grace time.Duration) {
	ctx, cancel := context.WithTimeout(s.noticeCtx, max(grace, time.Second))
	defer cancel()
	body, err := json.Marshal(terminateNotice{RequestID: requestID, GracePeriodMS: grace.Milliseconds()})
	if err != nil {
		s.log.Warn("terminate notice", "request_id", requestID, "err", err)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.cfg.TerminateEndpoint, bytes.NewReader(body))
	if err != nil {
		s.log.Warn("terminate notice", "request_id", requestID, "err", err)
		return
	}
	req.Header.Set("X-Request-Id", requestID)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		s.log.Warn("terminate notice", "request_id", requestID, "err", err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		s.log.Warn("terminate notice refused", "request_id", requestID, "status", resp.StatusCode)
	}
}

// registry holds this node's calls in progress.
type registry struct {
	mu    sync.Mutex
	calls map[int64]*call
}

func (r *registry) add(c *call) {
	r.mu.Lock()
	if r.calls == nil {
		r.calls = map[int64]*call{}
	}
	r.calls[c.jobID] = c
	r.mu.Unlock()
}

func (r *registry) remove(c *call) {
	r.mu.Lock()
	if r.calls[c.jobID] == c {
		delete(r.calls, c.jobID)
	}
	r.mu.Unlock()
}

func (r *registry) get(jobID int64) *call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[jobID]
}
