package riverstatus

import (
	"context"
	"fmt"
	"testing"

	"github.com/riverqueue/river/rivertype"

	"github.com/statustrace/statustrace/event"
)

// A remote cancel is recognised when the cause wraps River's sentinel too
// (errors.Is, not ==), before the "client stopping" case claims it.
func TestRemoteCancelCauseMayBeWrapped(t *testing.T) {
	t.Parallel()
	for _, cause := range []error{rivertype.ErrJobCancelledRemotely, fmt.Errorf("worker: %w", rivertype.ErrJobCancelledRemotely)} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(cause)
		job := &rivertype.JobRow{Attempt: 1, MaxAttempts: 3}
		to, code, _, _ := (&Tracker{}).classify(ctx, ctx, job, context.Canceled)
		if to != event.StateAborted || code != CodeTerminated {
			t.Errorf("cause %v: %v %q, want %v %q", cause, to, code, event.StateAborted, CodeTerminated)
		}
	}
}
