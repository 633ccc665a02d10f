package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidTraceParent(t *testing.T) {
	for tp, want := range map[string]bool{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":       true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00":       true,
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra": true, // a later version may add fields
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra": false,
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":       false,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":       false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01":       false,
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01":       false,
		"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01":       false,
		"":   false,
		"00": false,
	} {
		assert.Equal(t, want, ValidTraceParent(tp), tp)
	}
}

func TestValidRequestID(t *testing.T) {
	assert.True(t, ValidRequestID("a"))
	assert.True(t, ValidRequestID("0190f2c1-7c3e-7b1a-9d4e-2f1a3b4c5d6e"))
	assert.True(t, ValidRequestID("order:42.retry_1"))
	assert.False(t, ValidRequestID(""))
	assert.False(t, ValidRequestID("-leading-dash"))
	assert.False(t, ValidRequestID("has space"))
	assert.False(t, ValidRequestID("quote'"))
	assert.False(t, ValidRequestID(strings.Repeat("a", 129)))
}

// fake records what the handler asks of the service.
type fake struct {
	invoke    InvokeRequest
	terminate TerminateRequest
	err       error
}

func (f *fake) Invoke(_ context.Context, r InvokeRequest) (InvokeResult, error) {
	f.invoke = r
	return InvokeResult{RequestID: "rid", State: "QUEUED"}, f.err
}

func (f *fake) Terminate(_ context.Context, r TerminateRequest) (TerminateResult, error) {
	f.terminate = r
	return TerminateResult{RequestID: r.RequestID, Mode: r.Mode, State: "TERMINATING"}, f.err
}

func (f *fake) Event(context.Context, string) (EventStatus, error) { return EventStatus{}, f.err }

func (f *fake) SetTracing(_ context.Context, _, _ string, on *bool) (bool, error) {
	return on != nil && *on, f.err
}

func (f *fake) Tracing(context.Context, string, string) (bool, error) { return true, f.err }

func serve(h http.Handler, method, target, body string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestInvokePassesWhatTheCallerSent(t *testing.T) {
	f := &fake{}
	h := Handler(f, 1024)
	w := serve(h, http.MethodPost, "/v1/namespaces/ns/functions/fn/invocations", `{"x":1}`, map[string]string{
		"X-Request-Id": "abc", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Content-Type": "application/json",
	})
	require.Equal(t, http.StatusAccepted, w.Code)
	assert.Equal(t, "rid", w.Header().Get("X-Request-Id"))
	assert.JSONEq(t, `{"request_id":"rid","state":"QUEUED"}`, w.Body.String())
	assert.Equal(t, InvokeRequest{Namespace: "ns", Function: "fn", RequestID: "abc",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ContentType: "application/json", Payload: []byte(`{"x":1}`)}, f.invoke)

	w = serve(h, http.MethodPost, "/v1/namespaces/ns/functions/fn/invocations", `{}`, map[string]string{"traceparent": "garbage"})
	require.Equal(t, http.StatusAccepted, w.Code)
	assert.Empty(t, f.invoke.TraceParent, "an invalid traceparent is dropped, not an error")
}

func TestErrorsMapToStatusCodes(t *testing.T) {
	for err, code := range map[error]int{
		ErrNotFound:                http.StatusNotFound,
		ErrRateLimited:             http.StatusTooManyRequests,
		ErrDuplicate:               http.StatusConflict,
		ErrEnded:                   http.StatusConflict,
		ErrInvalid:                 http.StatusBadRequest,
		ErrNotAvailable:            http.StatusServiceUnavailable,
		errors.New("disk on fire"): http.StatusInternalServerError,
	} {
		w := serve(Handler(&fake{err: err}, 1024), http.MethodPost, "/v1/namespaces/ns/functions/fn/invocations", "", nil)
		assert.Equal(t, code, w.Code, err.Error())
		var body Error
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
		assert.NotEmpty(t, body.Code, err.Error())
		assert.Equal(t, err.Error(), body.Message)
	}
	w := serve(Handler(&fake{err: ErrRateLimited}, 1024), http.MethodPost, "/v1/namespaces/ns/functions/fn/invocations", "", nil)
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
}

func TestTerminateParameters(t *testing.T) {
	f := &fake{}
	h := Handler(f, 1024)
	w := serve(h, http.MethodPost, "/v1/events/r1/terminate", "", nil)
	require.Equal(t, http.StatusAccepted, w.Code)
	assert.Equal(t, TerminateRequest{RequestID: "r1", Mode: Graceful}, f.terminate, "graceful by default, function's grace")

	w = serve(h, http.MethodPost, "/v1/events/r2/terminate?mode=immediate", "", nil)
	require.Equal(t, http.StatusAccepted, w.Code)
	assert.Equal(t, Immediate, f.terminate.Mode)

	w = serve(h, http.MethodPost, "/v1/events/r3/terminate?grace=1500ms", "", nil)
	require.Equal(t, http.StatusAccepted, w.Code)
	require.NotNil(t, f.terminate.Grace)
	assert.Equal(t, 1500*time.Millisecond, *f.terminate.Grace)

	for _, q := range []string{"mode=later", "grace=soon", "grace=-1s", "grace=48h"} {
		w = serve(h, http.MethodPost, "/v1/events/r4/terminate?"+q, "", nil)
		assert.Equal(t, http.StatusBadRequest, w.Code, q)
	}
}

func TestPayloadLimit(t *testing.T) {
	w := serve(Handler(&fake{}, 4), http.MethodPost, "/v1/namespaces/ns/functions/fn/invocations", "12345", nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
}
