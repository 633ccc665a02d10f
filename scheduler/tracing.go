package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/statustrace/statustrace/scheduler/api"
	"github.com/statustrace/statustrace/scheduler/internal/store"
	"github.com/statustrace/statustrace/scheduler/riverstatus"
)

// SetTracing switches status trace of a function on every node (nil: back
// to the config file). The switch applies to events created from now on;
// events already accepted keep the setting they were created with, so none
// is left half-recorded.
func (s *Scheduler) SetTracing(ctx context.Context, namespace, function string, on *bool) (bool, error) {
	f := s.fns[namespace+"/"+function]
	if f == nil {
		return false, fmt.Errorf("%w: function %s/%s", api.ErrNotFound, namespace, function)
	}
	k := store.FunctionKey{Namespace: namespace, Function: function}
	if on == nil {
		if err := s.store.ResetTracing(ctx, k); err != nil {
			return false, fmt.Errorf("scheduler: %w", err)
		}
		f.trace.Store(f.cfg.TraceOn())
		return f.trace.Load(), nil
	}
	if err := s.store.SetTracing(ctx, k, *on); err != nil {
		return false, fmt.Errorf("scheduler: %w", err)
	}
	f.trace.Store(*on)
	return *on, nil
}

// Tracing reports a function's status-trace switch on this node.
func (s *Scheduler) Tracing(_ context.Context, namespace, function string) (bool, error) {
	f := s.fns[namespace+"/"+function]
	if f == nil {
		return false, fmt.Errorf("%w: function %s/%s", api.ErrNotFound, namespace, function)
	}
	return f.trace.Load(), nil
}

// refreshTracing applies the switches recorded by any node.
func (s *Scheduler) refreshTracing(ctx context.Context) error {
	set, err := s.store.Tracing(ctx)
	if err != nil {
		return err
	}
	for _, f := range s.fns {
		on, ok := set[store.FunctionKey{Namespace: f.cfg.Namespace, Function: f.cfg.Name}]
		if !ok {
			on = f.cfg.TraceOn()
		}
		f.trace.Store(on)
	}
	return nil
}

func (s *Scheduler) followTracing(ctx context.Context) {
	defer close(s.settingsDone)
	t := time.NewTicker(s.cfg.SettingsPoll.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.refreshTracing(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("reading status-trace switches", "err", err)
			}
			if err := s.refreshStanding(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("reading account standings", "err", err)
			}
		}
	}
}

// Event returns an event's state as the scheduler's job table shows it.
func (s *Scheduler) Event(ctx context.Context, requestID string) (api.EventStatus, error) {
	row, err := s.jobByRequestID(ctx, requestID)
	if err != nil {
		return api.EventStatus{}, err
	}
	ev, _ := riverstatus.FromJob(row)
	state := riverstatus.StateOf(row)
	st := api.EventStatus{
		RequestID:   requestID,
		Namespace:   ev.Namespace,
		Function:    ev.Function,
		Qualifier:   ev.Qualifier,
		State:       state.String(),
		Status:      state.Public(),
		Attempt:     row.Attempt,
		MaxAttempts: row.MaxAttempts,
		CreatedAt:   row.CreatedAt,
	}
	if n := len(row.Errors); n > 0 {
		st.LastError = riverstatus.ErrorText(row.Errors[n-1].Error)
	}
	return st, nil
}
