package scheduler

import (
	"context"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/statustrace/statustrace/scheduler/riverstatus"
)

// expiryBatch bounds how many due events one sweep ends.
const expiryBatch = 500

// followExpiry ends waiting events (queued, or waiting for a retry) as
// soon as they pass their max age, whether or not a worker is free: the
// worker-side check alone left an event QUEUED for as long as a backlog
// lasted. Every node sweeps; each job is claimed by one atomic conditional
// UPDATE, so exactly one node (or the worker that picks the job up first)
// reports EXPIRED. A sweep on every node rather than a River periodic job on
// the leader: no job row per second kept for job_retention, and no wait for
// leader election after the leader dies.
func (s *Scheduler) followExpiry(ctx context.Context) {
	defer close(s.expiryDone)
	t := time.NewTicker(s.cfg.ExpiryPoll.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.expireDue(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("expiry sweep", "err", err)
			}
		}
	}
}

// expireDue ends every waiting event past its max age and returns how many
// this node ended.
func (s *Scheduler) expireDue(ctx context.Context) (int, error) {
	ended := 0
	for {
		now := time.Now()
		due, err := s.store.DueForExpiry(ctx, now.UnixNano(), expiryBatch)
		if err != nil {
			return ended, err
		}
		for _, d := range due {
			ok, err := s.expireOne(ctx, d.ID, d.Attempt, now)
			if err != nil {
				return ended, err
			}
			if ok {
				ended++
			}
		}
		if len(due) < expiryBatch {
			return ended, nil
		}
	}
}

func (s *Scheduler) expireOne(ctx context.Context, id int64, attempt int, now time.Time) (bool, error) {
	attemptErr, err := riverstatus.ExpiryAttemptError(attempt, now)
	if err != nil {
		return false, err
	}
	att, md, ok, err := s.store.ClaimExpiry(ctx, id, attemptErr)
	if err != nil || !ok {
		return false, err
	}
	s.tracker.ExpiredWaiting(&rivertype.JobRow{ID: id, Attempt: att, Metadata: md})
	return true, nil
}
