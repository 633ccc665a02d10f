package riverstatus

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/statustrace/statustrace/event"
)

// ExpiredWaiting reports EXPIRED for a job that reached its event's max age
// while waiting (queued, or waiting for a retry) and was ended by whoever
// sweeps for expiry, not by a worker. Call it once the job is finalized,
// and only by the one caller that finalized it. The seq is the one a worker
// would have reported on picking the job up late, so the two paths can never
// produce two different EXPIRED transitions.
func (t *Tracker) ExpiredWaiting(job *rivertype.JobRow) {
	if ev, ok := FromJob(job); ok {
		t.emit(&ev, job.Attempt, PhaseIdle, waitingState(job.Attempt), event.StateExpired, CodeExpired, ErrExpired.Error())
	}
}

// ExpiryAttemptError is the attempt error to store on a job expired while
// waiting (JSON of rivertype.AttemptError), so StateOf reads it as EXPIRED.
func ExpiryAttemptError(attempt int, at time.Time) ([]byte, error) {
	b, err := json.Marshal(rivertype.AttemptError{
		At:      at.UTC(),
		Attempt: attempt,
		Error:   (&StateError{State: event.StateExpired, Code: CodeExpired, Err: ErrExpired}).Error(),
	})
	if err != nil {
		return nil, fmt.Errorf("riverstatus: encode attempt error: %w", err)
	}
	return b, nil
}
