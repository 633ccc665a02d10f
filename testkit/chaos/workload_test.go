package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/scheduler/config"
)

// kind is one behaviour of the workload: a function of the demo server
// (scheduler/demofuncs) and what an invocation of it must end as.
type kind struct {
	fn       string
	path     string // demofuncs endpoint
	status   string // public status at the end
	attempts uint32
	// states are the transitions' target states, in order.
	states []event.State
}

const retries = 2

var (
	q, r, w     = event.StateQueued, event.StateRunning, event.StateRetrying
	fin, failed = event.StateFinished, event.StateFailed
)

// kinds: each ends deterministically whatever happens around it (the demo
// server counts calls per request ID and lives in the test process, so a
// scheduler restart does not reset it).
var kinds = []kind{
	{fn: "ok", path: "/succeed", status: "FINISHED", attempts: 1, states: []event.State{q, r, fin}},
	{fn: "fail", path: "/fail", status: "FAILED", attempts: retries + 1, states: []event.State{q, r, w, r, w, r, failed}},
	{fn: "flaky", path: "/flaky?failures=1", status: "FINISHED", attempts: 2, states: []event.State{q, r, w, r, fin}},
	{fn: "flaky2", path: "/flaky?failures=2", status: "FINISHED", attempts: 3, states: []event.State{q, r, w, r, w, r, fin}},
}

// functions configures the kinds on the scheduler, calling demoURL.
func functions(demoURL string) []config.Function {
	fast := config.Backoff{Initial: config.Duration(10 * time.Millisecond), Max: config.Duration(50 * time.Millisecond), Multiplier: 2}
	n := retries
	var fs []config.Function
	for _, k := range kinds {
		fs = append(fs, config.Function{Name: k.fn, Namespace: namespace, Endpoint: demoURL + k.path, Retries: &n, Backoff: fast})
	}
	return fs
}

// workload invokes the kinds round-robin at a steady rate and records every
// accepted invocation. An invocation that meets a scheduler being stopped
// or restarted is retried with the same request ID until the scheduler
// answers: 202 (accepted now) or 409 (accepted by an earlier try whose
// answer was lost), so the record is exact whatever the faults do.
type workload struct {
	sc   *stack.SchedulerClient
	rate time.Duration // between invocations

	mu       sync.Mutex
	accepted map[string]kind // by request ID
	retried  int             // invocations that needed more than one try
	err      error
}

// run invokes until stop is closed; an invocation under way then still
// completes (its answer decides whether it was accepted), bounded by ctx.
func (wl *workload) run(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(wl.rate)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k := kinds[i%len(kinds)]
		rid := fmt.Sprintf("chaos-%s-%05d", k.fn, i)
		if err := wl.invoke(ctx, k, rid); err != nil {
			wl.mu.Lock()
			wl.err = errors.Join(wl.err, err)
			wl.mu.Unlock()
			return
		}
	}
}

func (wl *workload) invoke(ctx context.Context, k kind, rid string) error {
	for try := 0; ; try++ {
		code, _, err := wl.sc.Invoke(ctx, stack.Invocation{Namespace: namespace, Function: k.fn, RequestID: rid, Payload: []byte(`{}`)})
		switch {
		case err == nil && (code == http.StatusAccepted || code == http.StatusConflict):
			wl.mu.Lock()
			wl.accepted[rid] = k
			if try > 0 {
				wl.retried++
			}
			wl.mu.Unlock()
			return nil
		case err == nil && code != http.StatusServiceUnavailable:
			return fmt.Errorf("invoke %s: HTTP %d", rid, code)
		}
		// The scheduler is away (stopping, restarting): try again.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (wl *workload) snapshot() (map[string]kind, int, error) {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	out := make(map[string]kind, len(wl.accepted))
	for k, v := range wl.accepted {
		out[k] = v
	}
	return out, wl.retried, wl.err
}

func (wl *workload) count() int {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	return len(wl.accepted)
}
