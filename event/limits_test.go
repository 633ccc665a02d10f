package event

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncateKeepsUTF8Whole(t *testing.T) {
	s := "añ€😀b" // 1, 2, 3, 4 and 1 bytes
	for n := 0; n <= len(s)+1; n++ {
		got := Truncate(s, n)
		if len(got) > n || !utf8.ValidString(got) || !strings.HasPrefix(s, got) {
			t.Errorf("Truncate(%q, %d) = %q", s, n, got)
		}
		// the longest valid prefix: one more rune would not fit
		if rest := s[len(got):]; rest != "" {
			_, size := utf8.DecodeRuneInString(rest)
			if len(got)+size <= n {
				t.Errorf("Truncate(%q, %d) = %q cut a whole rune too many", s, n, got)
			}
		}
	}
}

func TestTransitionValidate(t *testing.T) {
	ok := Transition{Keys: Keys{Tenant: "t", RequestID: "r"}, To: StateQueued, TimeUnixNano: 1}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid transition rejected: %v", err)
	}
	long := strings.Repeat("x", MaxKeyBytes+1)
	for name, mut := range map[string]func(*Transition){
		"no request id":   func(t *Transition) { t.RequestID = "" },
		"bad to":          func(t *Transition) { t.To = StateNone },
		"bad from":        func(t *Transition) { t.From = State(200) },
		"from terminal":   func(t *Transition) { t.From = StateFinished },
		"no time":         func(t *Transition) { t.TimeUnixNano = 0 },
		"long function":   func(t *Transition) { t.Function = long },
		"long error code": func(t *Transition) { t.ErrorCode = long },
	} {
		tr := ok
		mut(&tr)
		if err := tr.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	tr := ok
	tr.ErrorMessage = strings.Repeat("m", MaxErrorMessageBytes*2)
	if err := tr.Validate(); err != nil {
		t.Errorf("a long error message is cut, not rejected: %v", err)
	}
}
