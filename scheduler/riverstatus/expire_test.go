package riverstatus_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/scheduler/riverstatus"
)

// A job ended by an expiry sweep reads as EXPIRED, and its transition has
// the seq a late worker would have used: queued → 4, waiting after attempt
// 1 → 8, from the waiting state.
func TestExpiredWaiting(t *testing.T) {
	b, err := riverstatus.ExpiryAttemptError(1, time.Now())
	require.NoError(t, err)
	var ae rivertype.AttemptError
	require.NoError(t, json.Unmarshal(b, &ae))
	row := &rivertype.JobRow{State: rivertype.JobStateCancelled, Errors: []rivertype.AttemptError{ae}}
	assert.Equal(t, event.StateExpired, riverstatus.StateOf(row))
	assert.Equal(t, riverstatus.ErrExpired.Error(), riverstatus.ErrorText(ae.Error))

	rec := &recorder{}
	tr := riverstatus.New(riverstatus.Options{Reporter: rec, Node: "n"})
	for attempt, rid := range []string{"q", "r"} {
		md, err := riverstatus.Metadata(riverstatus.Event{Tenant: "t", Namespace: "ns", Function: "f", RequestID: rid}, nil)
		require.NoError(t, err)
		tr.ExpiredWaiting(&rivertype.JobRow{Attempt: attempt, Metadata: md})
	}
	assert.Equal(t, []step{{event.StateQueued, event.StateExpired, 4, 0}}, steps(rec.Of("q")))
	assert.Equal(t, []step{{event.StateRetrying, event.StateExpired, 8, 1}}, steps(rec.Of("r")))
	assert.Equal(t, riverstatus.CodeExpired, rec.Of("r")[0].ErrorCode)
}
