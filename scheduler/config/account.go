package config

import (
	"fmt"
	"strings"
)

// Standing is an account's standing: whether it may invoke functions.
type Standing string

// Standings. An account in arrears or suspended has every new invocation
// refused before anything is enqueued; events already accepted run to their
// end.
const (
	StandingGood      Standing = "good"
	StandingArrears   Standing = "arrears"
	StandingSuspended Standing = "suspended"
)

// ParseStanding reads a standing name (case-insensitive).
func ParseStanding(s string) (Standing, error) {
	switch st := Standing(strings.ToLower(strings.TrimSpace(s))); st {
	case StandingGood, StandingArrears, StandingSuspended:
		return st, nil
	}
	return "", fmt.Errorf("standing %q is not one of %q, %q, %q", s, StandingGood, StandingArrears, StandingSuspended)
}

// severity orders standings so the worse of two wins.
func (s Standing) severity() int {
	switch s {
	case StandingSuspended:
		return 2
	case StandingArrears:
		return 1
	}
	return 0
}

// Worse returns the worse of two standings (suspended > arrears > good).
func Worse(a, b Standing) Standing {
	if b.severity() > a.severity() {
		return b
	}
	if a == "" {
		return StandingGood
	}
	return a
}

// Account is the standing of the scheduler's tenant as the config file sets
// it. The API overrides it at run time for every node (the override is kept
// in the shared database).
type Account struct {
	// Standing is the whole tenant's: good (default), arrears or suspended.
	Standing Standing `yaml:"standing"`
	// Namespaces sets a standing per namespace (a sub-account); a namespace's
	// invocations follow the worse of its own standing and the tenant's.
	Namespaces map[string]Standing `yaml:"namespaces"`
}

func (a *Account) validate(bad func(string, ...any)) {
	if a.Standing != "" {
		if _, err := ParseStanding(string(a.Standing)); err != nil {
			bad("account.standing: %v", err)
		}
	}
	for ns, st := range a.Namespaces {
		if ns == "" {
			bad("account.namespaces: a namespace name must not be empty")
		}
		if _, err := ParseStanding(string(st)); err != nil {
			bad("account.namespaces[%s]: %v", ns, err)
		}
	}
}
