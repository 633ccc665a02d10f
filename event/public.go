package event

import "slices"

// Public statuses: the established four values users filter and read.
// RUNNING is any non-terminal state; FAILED includes EXPIRED.
const (
	PublicRunning  = "RUNNING"
	PublicFinished = "FINISHED"
	PublicFailed   = "FAILED"
	PublicAborted  = "ABORTED"
)

// PublicStatuses lists the public statuses, RUNNING first, then the terminal
// ones in the order of the first state that maps to each.
func PublicStatuses() []string {
	out := []string{PublicRunning}
	for _, s := range TerminalStates() {
		if p := s.Public(); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// States lists the defined states in lifecycle order (StateNone excluded).
func States() []State {
	out := make([]State, 0, StateExpired)
	for s := StateQueued; s.Valid(); s++ {
		out = append(out, s)
	}
	return out
}

// TerminalStates lists the states no transition can follow.
func TerminalStates() []State { return StatesWhere(State.Terminal) }

// StatesWhere lists the states for which keep is true, in lifecycle order.
func StatesWhere(keep func(State) bool) []State {
	var out []State
	for _, s := range States() {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// StatesOf lists the states whose public status is public (RUNNING: every
// non-terminal state; FAILED: FAILED and EXPIRED).
func StatesOf(public string) []State {
	return StatesWhere(func(s State) bool { return s.Public() == public })
}

// IsPublicStatus reports whether p is one of PublicStatuses.
func IsPublicStatus(p string) bool { return slices.Contains(PublicStatuses(), p) }

// Rank orders states for the tie-break when two transitions of one event
// carry the same seq: terminal states over non-terminal ones, later states
// over earlier ones. It is 0 for StateNone and unknown states. Storage
// computes the same rank from the state name (SQLStateRank).
func (s State) Rank() uint8 {
	if !s.Valid() {
		return 0
	}
	return uint8(s)
}
