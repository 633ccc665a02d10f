package event

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
// Producers cut free text (the error message) with it; it allocates nothing.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Validate rejects a transition that cannot be recorded: no request ID, an
// invalid state, a transition out of a terminal state, no timestamp, or a
// key or bounded field longer than MaxKeyBytes. Free text is not rejected:
// the error message is cut to MaxErrorMessageBytes (Truncate).
func (t *Transition) Validate() error {
	switch {
	case t.RequestID == "":
		return errors.New("transition without request_id")
	case !t.To.Valid():
		return fmt.Errorf("transition of %q: invalid to_state %d", t.RequestID, uint8(t.To))
	case t.From != StateNone && !t.From.Valid():
		return fmt.Errorf("transition of %q: invalid from_state %d", t.RequestID, uint8(t.From))
	case t.From.Terminal():
		return fmt.Errorf("transition of %q: from terminal state %s", t.RequestID, t.From)
	case t.TimeUnixNano <= 0:
		return fmt.Errorf("transition of %q: no timestamp", t.RequestID)
	}
	for _, f := range [...]struct{ name, v string }{
		{"request_id", t.RequestID}, {"tenant", t.Tenant}, {"namespace", t.Namespace},
		{"function", t.Function}, {"qualifier", t.Qualifier}, {"error_code", t.ErrorCode},
		{"invoke_type", t.InvokeType}, {"node", t.Node}, {"traceparent", t.TraceParent},
	} {
		if len(f.v) > MaxKeyBytes {
			return fmt.Errorf("transition of %.64q: %s longer than %d bytes", t.RequestID, f.name, MaxKeyBytes)
		}
	}
	return nil
}
