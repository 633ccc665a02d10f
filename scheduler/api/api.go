// Package api is the scheduler's HTTP API:
//
//	POST   /v1/namespaces/{namespace}/functions/{function}/invocations
//	       body: the payload, passed to the function as is.
//	       headers (optional): X-Request-Id (else one is made), traceparent.
//	       202 {"request_id", "state"}: the new event, state QUEUED.
//	       404 unknown function, 409 request ID already used, 413 payload too
//	       large, 429 over the function's QPS limit, 402 account in arrears,
//	       403 account suspended (nothing is enqueued in each case).
//	POST   /v1/events/{request_id}/terminate?mode=graceful|immediate[&grace=10s]
//	       202 {"request_id", "mode", "state"}: ABORTED if the event was
//	       waiting, TERMINATING (graceful) or RUNNING (immediate, ABORTED
//	       follows) if running; 409 if it has already ended.
//	GET    /v1/events/{request_id}
//	       200 the event's current state as the scheduler sees it.
//	GET    /v1/namespaces/{namespace}/functions/{function}/status-trace
//	PUT    /v1/namespaces/{namespace}/functions/{function}/status-trace  {"enabled": false}
//	DELETE /v1/namespaces/{namespace}/functions/{function}/status-trace  (back to the config file)
//	       200 {"namespace", "function", "enabled"}
//	GET    /healthz
//
// Errors are {"code": "...", "message": "..."}, as in the statustrace API
// (codes: invalid_parameter, unauthenticated, forbidden, not_found, duplicate_request_id,
// event_ended, request_too_large, rate_limited, unavailable, internal).
//
// Authenticated wraps the handler with bearer-token authentication (tokens
// as in the statustrace API).
package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"
)

// Errors a Service returns; the handler maps them to status codes.
var (
	ErrNotFound     = errors.New("not found")
	ErrRateLimited  = errors.New("over the function's QPS limit")
	ErrDuplicate    = errors.New("request ID already used")
	ErrEnded        = errors.New("event has already ended")
	ErrInvalid      = errors.New("invalid request")
	ErrNotAvailable = errors.New("scheduler is not accepting requests")
)

// TerminateMode says how a running event is stopped.
type TerminateMode string

// Terminate modes.
const (
	Graceful  TerminateMode = "graceful"
	Immediate TerminateMode = "immediate"
)

// InvokeRequest is one asynchronous invocation.
type InvokeRequest struct {
	Namespace, Function string
	RequestID           string // validated; empty: the service makes one
	TraceParent         string // validated W3C traceparent, or empty
	ContentType         string
	Payload             []byte
}

// InvokeResult answers an accepted invocation.
type InvokeResult struct {
	RequestID string `json:"request_id"`
	State     string `json:"state"`
}

// TerminateRequest asks to stop an event.
type TerminateRequest struct {
	RequestID string
	Mode      TerminateMode
	Grace     *time.Duration // graceful only; nil: the function's default
}

// TerminateResult answers a terminate request.
type TerminateResult struct {
	RequestID string        `json:"request_id"`
	Mode      TerminateMode `json:"mode"`
	State     string        `json:"state"`
}

// EventStatus is an event as the scheduler sees it.
type EventStatus struct {
	RequestID   string    `json:"request_id"`
	Namespace   string    `json:"namespace"`
	Function    string    `json:"function"`
	Qualifier   string    `json:"qualifier"`
	State       string    `json:"state"`  // detailed state
	Status      string    `json:"status"` // public status: RUNNING, FINISHED, FAILED, ABORTED
	Attempt     int       `json:"attempt"`
	MaxAttempts int       `json:"max_attempts"`
	CreatedAt   time.Time `json:"created_at"`
	LastError   string    `json:"last_error,omitempty"`
}

// Tracing is a function's status-trace switch.
type Tracing struct {
	Namespace string `json:"namespace"`
	Function  string `json:"function"`
	Enabled   bool   `json:"enabled"`
}

// Service is what the API drives.
type Service interface {
	Invoke(ctx context.Context, req InvokeRequest) (InvokeResult, error)
	Terminate(ctx context.Context, req TerminateRequest) (TerminateResult, error)
	Event(ctx context.Context, requestID string) (EventStatus, error)
	// SetTracing switches status trace for a function; nil resets it to the
	// config file. It returns the switch now in force.
	SetTracing(ctx context.Context, namespace, function string, on *bool) (bool, error)
	Tracing(ctx context.Context, namespace, function string) (bool, error)
}

// MaxGrace bounds a terminate request's grace period.
const MaxGrace = 24 * time.Hour

// Handler serves the API for svc. Payloads above maxPayload bytes are
// refused with 413.
func Handler(svc Service, maxPayload int64) http.Handler {
	h := &handler{svc: svc, maxPayload: maxPayload}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/namespaces/{namespace}/functions/{function}/invocations", h.invoke)
	mux.HandleFunc("POST /v1/events/{request_id}/terminate", h.terminate)
	mux.HandleFunc("GET /v1/events/{request_id}", h.event)
	mux.HandleFunc("GET /v1/namespaces/{namespace}/functions/{function}/status-trace", h.getTracing)
	mux.HandleFunc("PUT /v1/namespaces/{namespace}/functions/{function}/status-trace", h.putTracing)
	mux.HandleFunc("DELETE /v1/namespaces/{namespace}/functions/{function}/status-trace", h.deleteTracing)
	h.standingRoutes(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

type handler struct {
	svc        Service
	maxPayload int64
}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// ValidRequestID reports whether a caller-supplied request ID is acceptable:
// 1–128 characters of letters, digits, '.', '_', ':', '-'.
func ValidRequestID(id string) bool { return requestIDRE.MatchString(id) }

// ValidTraceParent reports whether h is a W3C traceparent this scheduler
// can join: version 00 (or a later one, read as 00), non-zero IDs.
func ValidTraceParent(h string) bool {
	if len(h) < 55 || (len(h) > 55 && h[55] != '-') {
		return false
	}
	if h[2] != '-' || h[35] != '-' || h[52] != '-' {
		return false
	}
	ver, traceID, spanID, flags := h[0:2], h[3:35], h[36:52], h[53:55]
	if !isLowerHex(ver) || ver == "ff" || (ver == "00" && len(h) != 55) {
		return false
	}
	if !isLowerHex(traceID) || !isLowerHex(spanID) || !isLowerHex(flags) {
		return false
	}
	return traceID != "00000000000000000000000000000000" && spanID != "0000000000000000"
}

func isLowerHex(s string) bool {
	if _, err := hex.DecodeString(s); err != nil {
		return false
	}
	for _, c := range s {
		if c >= 'A' && c <= 'F' {
			return false
		}
	}
	return true
}

func (h *handler) invoke(w http.ResponseWriter, r *http.Request) {
	req := InvokeRequest{
		Namespace:   r.PathValue("namespace"),
		Function:    r.PathValue("function"),
		RequestID:   r.Header.Get("X-Request-Id"),
		ContentType: r.Header.Get("Content-Type"),
	}
	if req.RequestID != "" && !ValidRequestID(req.RequestID) {
		writeError(w, fmt.Errorf("%w: X-Request-Id must be 1-128 characters of letters, digits, '.', '_', ':', '-'", ErrInvalid))
		return
	}
	// An invalid traceparent is ignored, as W3C Trace Context asks: the
	// event starts a trace of its own.
	if tp := r.Header.Get("traceparent"); ValidTraceParent(tp) {
		req.TraceParent = tp
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxPayload))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeErrorStatus(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("payload is larger than %d bytes", h.maxPayload))
			return
		}
		writeErrorStatus(w, http.StatusBadRequest, CodeInvalid, "reading the payload: "+err.Error())
		return
	}
	req.Payload = body
	res, err := h.svc.Invoke(r.Context(), req)
	if err != nil {
		if errors.Is(err, ErrRateLimited) {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, err)
		return
	}
	w.Header().Set("X-Request-Id", res.RequestID)
	writeJSON(w, http.StatusAccepted, res)
}

func (h *handler) terminate(w http.ResponseWriter, r *http.Request) {
	req := TerminateRequest{RequestID: r.PathValue("request_id"), Mode: TerminateMode(r.URL.Query().Get("mode"))}
	if req.Mode == "" {
		req.Mode = Graceful
	}
	if req.Mode != Graceful && req.Mode != Immediate {
		writeError(w, fmt.Errorf("%w: mode must be graceful or immediate", ErrInvalid))
		return
	}
	if g := r.URL.Query().Get("grace"); g != "" {
		d, err := time.ParseDuration(g)
		if err != nil || d < 0 || d > MaxGrace {
			writeError(w, fmt.Errorf("%w: grace must be a duration between 0s and %s", ErrInvalid, MaxGrace))
			return
		}
		req.Grace = &d
	}
	res, err := h.svc.Terminate(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, res)
}

func (h *handler) event(w http.ResponseWriter, r *http.Request) {
	ev, err := h.svc.Event(r.Context(), r.PathValue("request_id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ev)
}

func (h *handler) getTracing(w http.ResponseWriter, r *http.Request) {
	ns, fn := r.PathValue("namespace"), r.PathValue("function")
	on, err := h.svc.Tracing(r.Context(), ns, fn)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Tracing{Namespace: ns, Function: fn, Enabled: on})
}

func (h *handler) putTracing(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Enabled *bool `json:"enabled"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Enabled == nil {
		writeError(w, fmt.Errorf(`%w: body must be {"enabled": true|false}`, ErrInvalid))
		return
	}
	h.setTracing(w, r, body.Enabled)
}

func (h *handler) deleteTracing(w http.ResponseWriter, r *http.Request) { h.setTracing(w, r, nil) }

func (h *handler) setTracing(w http.ResponseWriter, r *http.Request, on *bool) {
	ns, fn := r.PathValue("namespace"), r.PathValue("function")
	now, err := h.svc.SetTracing(r.Context(), ns, fn, on)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Tracing{Namespace: ns, Function: fn, Enabled: now})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error codes, as the statustrace API spells its own.
const (
	CodeInvalid         = "invalid_parameter"
	CodeUnauthenticated = "unauthenticated"
	CodeForbidden       = "forbidden"
	CodeNotFound        = "not_found"
	CodeDuplicate       = "duplicate_request_id"
	CodeEnded           = "event_ended"
	CodeTooLarge        = "request_too_large"
	CodeRateLimited     = "rate_limited"
	CodeUnavailable     = "unavailable"
	CodeInternal        = "internal"
)

// Error is the body of every error answer: {"code", "message"}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, CodeInternal
	if st, c, ok := standingError(err); ok {
		writeErrorStatus(w, st, c, err.Error())
		return
	}
	switch {
	case errors.Is(err, ErrInvalid):
		status, code = http.StatusBadRequest, CodeInvalid
	case errors.Is(err, ErrNotFound):
		status, code = http.StatusNotFound, CodeNotFound
	case errors.Is(err, ErrDuplicate):
		status, code = http.StatusConflict, CodeDuplicate
	case errors.Is(err, ErrEnded):
		status, code = http.StatusConflict, CodeEnded
	case errors.Is(err, ErrRateLimited):
		status, code = http.StatusTooManyRequests, CodeRateLimited
	case errors.Is(err, ErrNotAvailable):
		status, code = http.StatusServiceUnavailable, CodeUnavailable
	}
	writeErrorStatus(w, status, code, err.Error())
}

func writeErrorStatus(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, Error{Code: code, Message: msg})
}
