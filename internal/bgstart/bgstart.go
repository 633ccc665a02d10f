// Package bgstart runs a component's start-up step (creating its schema in
// ClickHouse) in the background: each attempt bounded in time, retried with
// exponential backoff until it succeeds, the component reporting a
// recoverable error (not ready) until then and OK after. Collector
// exporters that need ClickHouse use it, so that the collector starts and
// takes OTLP into its queues whatever ClickHouse does (refusing
// connections, hanging).
package bgstart

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"
)

// Backoff between attempts: from First, doubling, at most Max.
const (
	First = 500 * time.Millisecond
	Max   = 30 * time.Second
)

// Step is what runs until it succeeds.
type Step struct {
	// What names the step in logs ("schema migration").
	What string
	// Limit bounds one attempt.
	Limit time.Duration
	// Attempt runs once; it must clean up after itself when it fails.
	Attempt func(ctx context.Context) error
	// NotReady is reported, and returned by Wait, until an attempt succeeded.
	NotReady error
}

// Runner runs a Step in the background.
type Runner struct {
	ready    chan struct{}
	stopped  chan struct{} // closed by Stop: waiters give up
	stopOnce sync.Once
	stop     context.CancelFunc
	done     chan struct{}
}

// Start reports NotReady (from within the component's Start, so that the
// service does not mark the component OK when Start returns) and runs the
// step in the background.
func Start(host component.Host, logger *zap.Logger, s Step) *Runner {
	componentstatus.ReportStatus(host, componentstatus.NewRecoverableErrorEvent(s.NotReady))
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{ready: make(chan struct{}), stopped: make(chan struct{}), stop: cancel, done: make(chan struct{})}
	go r.loop(ctx, host, logger, s)
	return r
}

// Ready returns a Runner that is ready from the start (nothing to do).
func Ready() *Runner {
	r := &Runner{ready: make(chan struct{}), stopped: make(chan struct{}), done: make(chan struct{})}
	close(r.ready)
	close(r.done)
	return r
}

func (r *Runner) loop(ctx context.Context, host component.Host, logger *zap.Logger, s Step) {
	defer close(r.done)
	wait := First
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, s.Limit)
		err := s.Attempt(actx)
		cancel()
		if err == nil {
			close(r.ready)
			componentstatus.ReportStatus(host, componentstatus.NewEvent(componentstatus.StatusOK))
			return
		}
		if ctx.Err() != nil {
			return
		}
		logger.Warn(s.What+" failed; retrying in the background (exports wait in the queue)",
			zap.Int("attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, Max)
	}
}

// Wait waits until the step succeeded, ctx ends (an export's timeout) or
// the runner stops, and returns nil or notReady.
func (r *Runner) Wait(ctx context.Context, notReady error) error {
	select {
	case <-r.ready:
		return nil
	default:
	}
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		return notReady
	case <-r.stopped:
		return notReady
	}
}

// IsReady reports whether the step succeeded.
func (r *Runner) IsReady() bool {
	select {
	case <-r.ready:
		return true
	default:
		return false
	}
}

// Stop ends the background attempts and waits for them.
func (r *Runner) Stop() {
	r.stopOnce.Do(func() {
		close(r.stopped)
		if r.stop != nil {
			r.stop()
		}
	})
	<-r.done
}
