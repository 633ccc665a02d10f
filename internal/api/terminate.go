package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/statustrace/statustrace/internal/schedclient"
	"github.com/statustrace/statustrace/queries"
	schedapi "github.com/statustrace/statustrace/scheduler/api"
)

// Actions go to the scheduler's API (Config.Scheduler) with the caller's
// scope checked here first: the event must be one the caller can see, the
// function one of its namespaces, and the caller's tenant the one the
// scheduler runs (Config.SchedulerTenant). Browsers and API clients never
// talk to the scheduler.

// ErrNoScheduler is an action asked of a server without a scheduler.
var ErrNoScheduler = errors.New("actions are not configured: serve has no --scheduler-url")

// Error codes of actions.
const (
	codeNotConfigured  = "not_configured"
	codeEnded          = "event_ended"
	codeSchedulerError = "scheduler_error"
)

// Terminate stops an event the caller can see: graceful (TERMINATING, then
// ABORTED after the function's grace) or immediate.
func (s *Server) Terminate(ctx context.Context, p Principal, requestID string, mode schedapi.TerminateMode) (schedapi.TerminateResult, error) {
	if s.cfg.Scheduler == nil {
		return schedapi.TerminateResult{}, ErrNoScheduler
	}
	if mode != schedapi.Graceful && mode != schedapi.Immediate {
		return schedapi.TerminateResult{}, bad("mode", "%.20q: want graceful or immediate", string(mode))
	}
	if err := checkKey("request_id", requestID); err != nil {
		return schedapi.TerminateResult{}, err
	}
	if p.Tenant != s.cfg.SchedulerTenant {
		return schedapi.TerminateResult{}, queries.ErrNotFound
	}
	if _, err := s.cfg.Backend.Get(ctx, p.Scope(), requestID); err != nil {
		return schedapi.TerminateResult{}, err
	}
	return s.cfg.Scheduler.Terminate(ctx, requestID, mode)
}

// FunctionTracing reads (on nil set) or switches a function's status trace.
// reset puts it back to the scheduler's config file.
func (s *Server) FunctionTracing(ctx context.Context, p Principal, namespace, function string, set *bool, reset bool) (schedapi.Tracing, error) {
	if s.cfg.Scheduler == nil {
		return schedapi.Tracing{}, ErrNoScheduler
	}
	if err := checkKey("namespace", namespace); err != nil {
		return schedapi.Tracing{}, err
	}
	if err := checkKey("function", function); err != nil {
		return schedapi.Tracing{}, err
	}
	if p.Tenant != s.cfg.SchedulerTenant || !p.Allows(namespace) {
		return schedapi.Tracing{}, errNoFunction
	}
	switch {
	case reset:
		return s.cfg.Scheduler.SetTracing(ctx, namespace, function, nil)
	case set != nil:
		return s.cfg.Scheduler.SetTracing(ctx, namespace, function, set)
	}
	return s.cfg.Scheduler.Tracing(ctx, namespace, function)
}

var errNoFunction = errors.New("no such function")

// ActionError classifies an error of Terminate or FunctionTracing as an
// HTTP status, an error code and a message safe to show.
func (s *Server) ActionError(r *http.Request, err error) (int, string, string) {
	var se *schedclient.Error
	switch {
	case errors.Is(err, ErrNoScheduler):
		return http.StatusNotImplemented, codeNotConfigured, err.Error()
	case errors.Is(err, errNoFunction):
		return http.StatusNotFound, codeNotFound, "no such function"
	case errors.As(err, &se):
		switch {
		case se.Status == http.StatusNotFound:
			return http.StatusNotFound, codeNotFound, "the scheduler has no such event or function"
		case se.Code == schedapi.CodeEnded:
			return http.StatusConflict, codeEnded, "the event has already ended"
		case se.Status == http.StatusBadRequest:
			return http.StatusBadRequest, codeInvalid, se.Message
		}
		s.cfg.Log.Error("api: scheduler refused an action", "request_id", requestID(r.Context()), "err", err)
		return http.StatusBadGateway, codeSchedulerError, fmt.Sprintf("the scheduler refused the action (request %s)", requestID(r.Context()))
	}
	return s.classify(r, err)
}

func (s *Server) actionFail(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := s.ActionError(r, err)
	writeError(w, status, code, msg)
}

// terminate answers POST /v1/events/{request_id}/terminate?mode=graceful|immediate.
func (s *Server) terminate(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery)
	if err == nil {
		err = onlyParams(q, "mode")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	mode := schedapi.TerminateMode(q.Get("mode"))
	if mode == "" {
		mode = schedapi.Graceful
	}
	ctx, cancel := s.queryCtx(r)
	defer cancel()
	res, err := s.Terminate(ctx, principal(r.Context()), r.PathValue("request_id"), mode)
	if err != nil {
		s.actionFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, res)
}

// statusTrace answers GET, PUT ({"enabled": bool}) and DELETE (back to the
// scheduler's config) /v1/functions/{namespace}/{function}/status-trace.
func (s *Server) statusTrace(w http.ResponseWriter, r *http.Request) {
	var (
		set   *bool
		reset bool
	)
	switch r.Method {
	case http.MethodPut:
		var body struct {
			Enabled *bool `json:"enabled"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || body.Enabled == nil {
			s.fail(w, r, bad("enabled", `body must be {"enabled": true|false}`))
			return
		}
		set = body.Enabled
	case http.MethodDelete:
		reset = true
	}
	ctx, cancel := s.queryCtx(r)
	defer cancel()
	t, err := s.FunctionTracing(ctx, principal(r.Context()), r.PathValue("namespace"), r.PathValue("function"), set, reset)
	if err != nil {
		s.actionFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// ActionTerminateAsyncEvent is the reference platform's terminate action.
const ActionTerminateAsyncEvent = "TerminateAsyncEvent"

// terminateAsyncEvent: FunctionName and InvokeRequestId required,
// Namespace (default "default"), GraceShutdown (default false: immediate).
// The event must belong to that function; the answer has the state the
// scheduler reported (extension "State").
func (s *Server) terminateAsyncEvent(ctx context.Context, p Principal, req *ActionRequest) (map[string]any, error) {
	if req.FunctionName == "" {
		return nil, missing("FunctionName")
	}
	if req.InvokeRequestId == "" {
		return nil, missing("InvokeRequestId")
	}
	ns := req.Namespace
	if ns == "" {
		ns = "default"
	}
	for k, v := range map[string]string{"FunctionName": req.FunctionName, "Namespace": ns, "InvokeRequestId": req.InvokeRequestId} {
		if err := checkKey(k, v); err != nil {
			return nil, err
		}
	}
	d, err := s.cfg.Backend.Get(ctx, p.Scope(), req.InvokeRequestId)
	if err != nil {
		return nil, err
	}
	if d.Function != req.FunctionName || d.Namespace != ns {
		return nil, queries.ErrNotFound
	}
	mode := schedapi.Immediate
	if req.GraceShutdown != nil && *req.GraceShutdown {
		mode = schedapi.Graceful
	}
	res, err := s.Terminate(ctx, p, req.InvokeRequestId, mode)
	if err != nil {
		return nil, err
	}
	return map[string]any{"State": res.State}, nil
}

// actionCode spells an action error's code in the reference platform's style.
func actionCode(code string) string {
	switch code {
	case codeEnded:
		return "FailedOperation.AsyncEventEnded"
	case codeNotConfigured:
		return "UnsupportedOperation"
	}
	return "FailedOperation.Scheduler"
}
