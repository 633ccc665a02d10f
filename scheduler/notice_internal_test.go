package scheduler

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statustrace/statustrace/scheduler/config"
)

// The terminate notice is JSON (encoding/json, whatever the request ID
// holds), and Stop's awaitNotices returns only once every notice did; when
// its ctx ends first, the notices still in flight are cancelled.
func TestTerminateNoticesAreAwaited(t *testing.T) {
	t.Parallel()
	release, received := make(chan struct{}), make(chan struct{})
	var finished atomic.Int32
	var got terminateNotice
	var decodeErr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Request-Id") == "slow" {
			decodeErr = json.Unmarshal(b, &got)
			close(received)
			<-release
		} else {
			<-r.Context().Done() // never answers: only a cancel ends it
		}
		finished.Add(1)
	}))
	defer srv.Close()

	newScheduler := func() *Scheduler {
		s := &Scheduler{log: slog.New(slog.NewTextHandler(io.Discard, nil)), http: srv.Client()}
		s.noticeCtx, s.noticeCancel = context.WithCancel(context.Background())
		return s
	}
	f := &function{cfg: &config.Function{TerminateEndpoint: srv.URL}}

	// Awaited: awaitNotices returns after the notice was answered.
	s := newScheduler()
	s.notices.Go(func() { s.notifyTerminate(f, "slow", time.Hour) })
	go func() {
		<-received // the notice is in flight: awaitNotices must wait for it
		close(release)
	}()
	s.awaitNotices(context.Background())
	if finished.Load() != 1 {
		t.Fatal("awaitNotices returned before the notice was answered")
	}
	if decodeErr != nil || got.RequestID != "slow" || got.GracePeriodMS != time.Hour.Milliseconds() {
		t.Errorf("notice body: %+v, %v", got, decodeErr)
	}

	// Cancelled: a notice nobody answers ends when Stop's ctx does.
	s = newScheduler()
	s.notices.Go(func() { s.notifyTerminate(f, "deaf", time.Hour) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.awaitNotices(ctx)
}

// A request ID with a character Go's %q writes in a form JSON does not have
// (\U000e0001) still makes a valid body.
func TestTerminateNoticeIsJSON(t *testing.T) {
	t.Parallel()
	bodies := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer srv.Close()
	s := &Scheduler{log: slog.New(slog.NewTextHandler(io.Discard, nil)), http: srv.Client()}
	s.noticeCtx, s.noticeCancel = context.WithCancel(context.Background())
	rid := "req-\U000E0001-é"
	s.notifyTerminate(&function{cfg: &config.Function{TerminateEndpoint: srv.URL}}, rid, 1500*time.Millisecond)
	var b []byte
	select {
	case b = <-bodies:
	default:
		t.Fatal("no notice was sent")
	}
	var n terminateNotice
	if err := json.Unmarshal(b, &n); err != nil || n.RequestID != rid || n.GracePeriodMS != 1500 {
		t.Errorf("body %s: %+v, %v", b, n, err)
	}
}
