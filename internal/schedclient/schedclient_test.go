package schedclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/statustrace/statustrace/scheduler/api"
)

func TestErrorsAndToken(t *testing.T) {
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/v1/events/ended/terminate":
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"code": "event_ended", "message": "event has already ended"}`))
		case "/v1/events/proxy/terminate":
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`<html>bad gateway</html>`))
		default:
			_, _ = w.Write([]byte(`{"request_id": "r", "mode": "immediate", "state": "RUNNING"}`))
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL, "sched-token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Terminate(context.Background(), "r", api.Immediate)
	if err != nil || res.State != "RUNNING" || gotAuth != "Bearer sched-token-0123456789" {
		t.Errorf("terminate: %+v %v, auth %q", res, err, gotAuth)
	}
	var se *Error
	_, err = c.Terminate(context.Background(), "ended", api.Graceful)
	if !errors.As(err, &se) || se.Status != http.StatusConflict || se.Code != api.CodeEnded {
		t.Errorf("ended: %v", err)
	}
	_, err = c.Terminate(context.Background(), "proxy", api.Graceful)
	if !errors.As(err, &se) || se.Status != http.StatusBadGateway || se.Code != "unknown" {
		t.Errorf("non-JSON error: %v", err)
	}
	for _, bad := range [][2]string{{"ftp://x", "t"}, {"http://", "t"}, {srv.URL, ""}} {
		if _, err := New(bad[0], bad[1]); err == nil {
			t.Errorf("New(%q, %q) accepted", bad[0], bad[1])
		}
	}
}
