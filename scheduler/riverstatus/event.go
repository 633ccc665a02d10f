// Package riverstatus reports the status of River jobs as statustrace events.
//
// Any River user can use it: give a job an Event in its metadata (Metadata or
// Insert), install a Tracker as River middleware, and every state change of
// the job — QUEUED, RUNNING, RETRYING, TERMINATING, FINISHED, FAILED, ABORTED,
// EXPIRED — is handed to a Reporter (plugin/host's Reporter, or anything with
// a non-blocking Report method). Jobs without an Event are left alone.
//
//	tracker := riverstatus.New(riverstatus.Options{Reporter: rep, Node: "node-1"})
//	client, _ := river.NewClient(driver, &river.Config{
//		Middleware:  []rivertype.Middleware{tracker},
//		RetryPolicy: riverstatus.RetryPolicy{Policy: &river.DefaultClientRetryPolicy{}},
//		...
//	})
//	res, err := riverstatus.Insert(ctx, tracker, client, args, ev, nil) // reports QUEUED after commit
//
// Sequence numbers are computed, not stored: seq = attempt*4 + phase + 1 (see
// Seq), so they grow strictly along an event's life across retries and nodes,
// and a transition reported twice gets the same seq both times.
package riverstatus

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/statustrace/statustrace/event"
)

// MetadataKey is the key of the Event inside a job's metadata.
const MetadataKey = "statustrace"

// Event is what a job carries about the async event it executes.
type Event struct {
	Tenant      string `json:"tenant,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Function    string `json:"function,omitempty"`
	Qualifier   string `json:"qualifier,omitempty"`
	RequestID   string `json:"request_id"`
	InvokeType  string `json:"invoke_type,omitempty"`
	TraceParent string `json:"traceparent,omitempty"`
	// ExpiresAt is when the event reaches its max age (Unix ns; 0: never).
	// The event is EXPIRED if it has not completed by then.
	ExpiresAt int64 `json:"expires_at,omitempty"`
	// Untraced events run and are tracked as usual, but none of their
	// transitions is reported: status trace was off when they were created.
	Untraced bool `json:"untraced,omitempty"`
}

// Keys returns the event's identifying keys.
func (e *Event) Keys() event.Keys {
	return event.Keys{Tenant: e.Tenant, Namespace: e.Namespace, Function: e.Function, Qualifier: e.Qualifier, RequestID: e.RequestID}
}

// Expires returns the expiry time and whether there is one.
func (e *Event) Expires() (time.Time, bool) {
	if e.ExpiresAt == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, e.ExpiresAt), true
}

// Metadata returns job metadata carrying ev, keeping every other key of
// existing (which may be nil). Put the result in river.InsertOpts.Metadata.
func Metadata(ev Event, existing []byte) ([]byte, error) {
	if ev.RequestID == "" {
		return nil, fmt.Errorf("riverstatus: event has no request ID")
	}
	m := map[string]json.RawMessage{}
	if len(existing) > 0 {
		if err := json.Unmarshal(existing, &m); err != nil {
			return nil, fmt.Errorf("riverstatus: existing metadata is not a JSON object: %w", err)
		}
	}
	enc, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("riverstatus: encode event: %w", err)
	}
	m[MetadataKey] = enc
	out, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("riverstatus: encode metadata: %w", err)
	}
	return out, nil
}

// FromJob returns the Event carried by a job, if it has one.
func FromJob(job *rivertype.JobRow) (Event, bool) {
	var md struct {
		Event *Event `json:"statustrace"`
	}
	if len(job.Metadata) == 0 || json.Unmarshal(job.Metadata, &md) != nil || md.Event == nil || md.Event.RequestID == "" {
		return Event{}, false
	}
	return *md.Event, true
}

// Phase is a transition's place within one attempt.
type Phase uint8

const (
	// PhaseStart: QUEUED (attempt 0) or RUNNING (attempt n ≥ 1).
	PhaseStart Phase = iota
	// PhaseTerminating: a graceful terminate began during attempt n.
	PhaseTerminating
	// PhaseEnd: attempt n ended — RETRYING, or FINISHED/FAILED/ABORTED/EXPIRED.
	PhaseEnd
	// PhaseIdle: the event ended while waiting after attempt n (or before
	// attempt 1 when n = 0) — ABORTED or EXPIRED.
	PhaseIdle
	phaseCount
)

// Seq is the per-event sequence number of a transition. Along any event's
// life (attempt, phase) only grows, so Seq does too, whichever node reports.
func Seq(attempt int, p Phase) uint64 {
	return uint64(max(attempt, 0))*uint64(phaseCount) + uint64(p) + 1
}

// waitingState is the state of an event waiting for attempt+1.
func waitingState(attempt int) event.State {
	if attempt <= 0 {
		return event.StateQueued
	}
	return event.StateRetrying
}
