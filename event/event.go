// Package event is the event model shared by everything that produces or
// consumes status transitions: the scheduler reports them, the plugin turns
// them into spans, the exporter turns spans into rows. Keeping the states and
// the span attribute names in one small package means the producer and the
// consumer cannot drift apart.
package event

import "fmt"

// State is the detailed state of an async event.
type State uint8

// Detailed states. The zero value is "no state" and is used as FromState of the
// first transition of an event.
const (
	StateNone        State = iota
	StateQueued            // accepted, waiting for a worker
	StateRunning           // an attempt is executing
	StateRetrying          // an attempt failed, waiting for the next one
	StateTerminating       // terminate requested, graceful shutdown in progress
	StateFinished          // terminal: succeeded
	StateFailed            // terminal: failed after the last attempt
	StateAborted           // terminal: terminated on request
	StateExpired           // terminal: max event age reached
)

var stateNames = [...]string{"", "QUEUED", "RUNNING", "RETRYING", "TERMINATING", "FINISHED", "FAILED", "ABORTED", "EXPIRED"}

// String returns the upper-case name used on the wire and in storage.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// ParseState maps a state name back to a State. The empty string is StateNone.
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if n == name {
			return State(i), nil
		}
	}
	return StateNone, fmt.Errorf("unknown state %q", name)
}

// Terminal reports whether no transition can follow s.
func (s State) Terminal() bool { return s >= StateFinished && s <= StateExpired }

// Valid reports whether s is one of the defined states (StateNone excluded).
func (s State) Valid() bool { return s >= StateQueued && s <= StateExpired }

// Public maps a detailed state to the established public status:
// RUNNING (any non-terminal state), FINISHED, FAILED (incl. expired), ABORTED.
func (s State) Public() string {
	switch s {
	case StateFinished:
		return PublicFinished
	case StateFailed, StateExpired:
		return PublicFailed
	case StateAborted:
		return PublicAborted
	default:
		return PublicRunning
	}
}

// Keys identify an async event and scope it.
type Keys struct {
	Tenant    string // account; the unit of isolation
	Namespace string
	Function  string
	Qualifier string // version or alias
	RequestID string // unique per event
}

// Transition is one state change of one event, as the scheduler reports it.
// It is a plain value so that reporting it copies and never allocates.
type Transition struct {
	Keys
	Seq          uint64 // per-event, monotonic, assigned by the host
	Attempt      uint32
	From         State
	To           State
	TimeUnixNano int64
	ErrorCode    string // empty when there is no error
	ErrorMessage string // bounded by MaxErrorMessageBytes downstream
	InvokeType   string // e.g. "async", "timer", "queue"
	Node         string // scheduler node that made the change
	TraceParent  string // W3C traceparent of the invocation, if any
}

// Limits on free-text fields. Producers truncate to these; the exporter
// enforces them again because spans can come from anywhere.
const (
	MaxErrorMessageBytes = 4096
	MaxKeyBytes          = 256
)
