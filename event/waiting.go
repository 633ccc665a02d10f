package event

// Waiting reports whether an event in state s waits for a worker: queued,
// or waiting for its next attempt. Waiting events make up a function's
// backlog.
func (s State) Waiting() bool { return s == StateQueued || s == StateRetrying }

// WaitingStates lists the states for which Waiting is true.
func WaitingStates() []State { return StatesWhere(State.Waiting) }
