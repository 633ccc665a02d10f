package bgstart

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"
)

type host struct {
	component.Host
	mu     sync.Mutex
	status []componentstatus.Status
}

func (h *host) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status = append(h.status, ev.Status())
}

func (h *host) statuses() []componentstatus.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]componentstatus.Status(nil), h.status...)
}

var errNotReady = errors.New("not ready")

// An attempt that hangs is cut off at the limit; failures are retried; the
// component is not ready until one attempt succeeds, and OK after.
func TestRetriesUntilReady(t *testing.T) {
	h := &host{Host: componenttest.NewNopHost()}
	var calls atomic.Int32
	r := Start(h, zap.NewNop(), Step{What: "test", Limit: 50 * time.Millisecond, NotReady: errNotReady,
		Attempt: func(ctx context.Context) error {
			switch calls.Add(1) {
			case 1: // hangs until its limit
				<-ctx.Done()
				return ctx.Err()
			case 2:
				return errors.New("refused")
			}
			return nil
		}})
	defer r.Stop()
	if s := h.statuses(); len(s) == 0 || s[0] != componentstatus.StatusRecoverableError {
		t.Fatalf("statuses at start %v", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	if err := r.Wait(ctx, errNotReady); !errors.Is(err, errNotReady) {
		t.Errorf("wait before ready: %v", err)
	}
	cancel()
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Wait(ctx, errNotReady); err != nil {
		t.Fatalf("never ready: %v", err)
	}
	if calls.Load() != 3 || !r.IsReady() {
		t.Errorf("%d attempts", calls.Load())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := h.statuses()
		if s[len(s)-1] == componentstatus.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses %v", s)
		}
		time.Sleep(time.Millisecond)
	}
}

// Stop ends the attempts and releases whoever waits.
func TestStopReleasesWaiters(t *testing.T) {
	r := Start(componenttest.NewNopHost(), zap.NewNop(), Step{What: "test", Limit: time.Second, NotReady: errNotReady,
		Attempt: func(context.Context) error { return errors.New("down") }})
	done := make(chan error, 1)
	go func() { done <- r.Wait(context.Background(), errNotReady) }()
	time.Sleep(20 * time.Millisecond)
	r.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, errNotReady) {
			t.Fatalf("wait: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter was not released by Stop")
	}
	r.Stop() // twice is fine
	if !Ready().IsReady() {
		t.Error("Ready is not ready")
	}
}
