package event

import (
	"fmt"
	"strings"
	"text/template"
)

// SQL fragments generated from the state rules above, so ClickHouse SQL
// (views, queries, dashboards, migrations) applies exactly the rules Go code
// does. Every renderer of embedded .sql files installs TemplateFuncs; the
// fragments take a column name (checked to be a plain identifier) and never
// user input.

// SQLLiteral quotes a state or public status name for SQL.
func SQLLiteral(name string) string { return "'" + name + "'" }

// SQLList is a comma-separated list of quoted state names ("'A', 'B'").
func SQLList(states []State) string {
	q := make([]string, len(states))
	for i, s := range states {
		q[i] = SQLLiteral(s.String())
	}
	return strings.Join(q, ", ")
}

// SQLStateRank is State.Rank over a state-name column: a UInt8, 0 for
// anything that is not a state. Released migrations store this text, so its
// form (array without spaces) must not change.
func SQLStateRank(col string) string {
	return "toUInt8(indexOf(" + sqlRankArray() + ", " + col + "))"
}

// sqlRankArray lists every state name at the position of its rank (1-based,
// as indexOf and arrayElement count), without spaces.
func sqlRankArray() string {
	names := make([]string, 0, StateExpired)
	for _, s := range States() {
		names = append(names, SQLLiteral(s.String()))
	}
	return "[" + strings.Join(names, ",") + "]"
}

// SQLStateKey orders one event's transitions the way its current state is
// chosen: by seq, then, for two reports of one seq, by state rank (terminal
// over non-terminal, then later over earlier). It is a UInt64, seq*256 +
// rank, so the events table keeps the current state as a plain max: no
// aggregate state per row, which made its view the costliest part of an
// insert. seqExpr and stateExpr are SQL expressions of our own templates,
// never user input.
func SQLStateKey(seqExpr, stateExpr string) string {
	return "toUInt64(" + seqExpr + ") * " + stateKeyBase + " + " + SQLStateRank(stateExpr)
}

// stateKeyBase is what SQLStateKey multiplies the seq by: every rank is
// below it. Released migrations store the key's text, so it stays 256.
const stateKeyBase = "256"

// SQLStateOfKey is the state name a SQLStateKey value holds ("" for 0).
// keyExpr is an SQL expression of our own templates, never user input.
func SQLStateOfKey(keyExpr string) string {
	return "arrayElement(" + sqlRankArray() + ", toUInt8(modulo(" + keyExpr + ", " + stateKeyBase + ")))"
}

// SQLIsTerminal is State.Terminal over a state-name column.
func SQLIsTerminal(col string) string {
	return col + " IN (" + SQLList(TerminalStates()) + ")"
}

// SQLIsWaiting is State.Waiting over a state-name column.
func SQLIsWaiting(col string) string {
	return col + " IN (" + SQLList(WaitingStates()) + ")"
}

// SQLPublicStatus is State.Public over a state-name column.
func SQLPublicStatus(col string) string {
	var b strings.Builder
	b.WriteString("multiIf(")
	for _, p := range PublicStatuses() {
		if p == PublicRunning {
			continue // the default branch
		}
		fmt.Fprintf(&b, "%s IN (%s), %s, ", col, SQLList(StatesOf(p)), SQLLiteral(p))
	}
	b.WriteString(SQLLiteral(PublicRunning) + ")")
	return b.String()
}

// TemplateFuncs are the state (and span ID) functions every embedded .sql
// template can call. Names are given in lower case so the templates never spell a state
// the way storage does:
//
//	{{state "queued"}}         'QUEUED'
//	{{public "failed"}}        'FAILED' (a public status)
//	{{stateList}}              'QUEUED', 'RUNNING', ... every state
//	{{statesOf "failed"}}      'FAILED', 'EXPIRED': states with that public status
//	{{isTerminal "col"}}       col IN ('FINISHED', ...)
//	{{isWaiting "col"}}        col IN ('QUEUED', 'RETRYING'): waits for a worker
//	{{publicStatus "col"}}     multiIf(...): the public status of col
//	{{stateRank "col"}}        the tie-break rank of col (UInt8)
//	{{transitionSpanID "r" "s"}}  TransitionSpanID over columns r, s: FixedString(8)
//	{{stateKey "seq" "state"}} an event's order of transitions (UInt64; expressions)
//	{{stateOfKey "max(k)"}}    the state a stateKey value holds (expression)
//
// and, to range over (lower-case names, fit for column aliases and for
// state/public above): {{states}}, {{terminalStates}},
// {{nonTerminalStates}}, {{waitingStates}}, {{publicStatuses}}.
func TemplateFuncs() template.FuncMap {
	return template.FuncMap{
		"states":            func() []string { return lowerNames(States()) },
		"terminalStates":    func() []string { return lowerNames(TerminalStates()) },
		"nonTerminalStates": func() []string { return lowerNames(StatesOf(PublicRunning)) },
		"waitingStates":     func() []string { return lowerNames(WaitingStates()) },
		"publicStatuses": func() []string {
			ps := PublicStatuses()
			for i, p := range ps {
				ps[i] = strings.ToLower(p)
			}
			return ps
		},
		"state": func(name string) (string, error) {
			s, err := ParseState(strings.ToUpper(name))
			if err != nil || !s.Valid() {
				return "", fmt.Errorf("state: unknown state %q", name)
			}
			return SQLLiteral(s.String()), nil
		},
		"public": func(name string) (string, error) {
			p := strings.ToUpper(name)
			if !IsPublicStatus(p) {
				return "", fmt.Errorf("public: unknown public status %q", name)
			}
			return SQLLiteral(p), nil
		},
		"stateList": func() string { return SQLList(States()) },
		"statesOf": func(name string) (string, error) {
			p := strings.ToUpper(name)
			if !IsPublicStatus(p) {
				return "", fmt.Errorf("statesOf: unknown public status %q", name)
			}
			return SQLList(StatesOf(p)), nil
		},
		"isTerminal": column(SQLIsTerminal),
		"transitionSpanID": func(requestIDCol, seqCol string) (string, error) {
			if !identOK(requestIDCol) || !identOK(seqCol) {
				return "", fmt.Errorf("transitionSpanID: %q, %q are not column names", requestIDCol, seqCol)
			}
			return SQLTransitionSpanID(requestIDCol, seqCol), nil
		},
		// Expressions, not only columns: the readers apply them to
		// aggregates (max(state_key)), the migrations to finalized states.
		"stateKey":     SQLStateKey,
		"stateOfKey":   SQLStateOfKey,
		"isWaiting":    column(SQLIsWaiting),
		"publicStatus": column(SQLPublicStatus),
		"stateRank":    column(SQLStateRank),
	}
}

func lowerNames(states []State) []string {
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = strings.ToLower(s.String())
	}
	return out
}

// column wraps a fragment so that a typo in a template fails at render
// time instead of producing odd SQL.
func column(f func(string) string) func(string) (string, error) {
	return func(col string) (string, error) {
		if !identOK(col) {
			return "", fmt.Errorf("%q is not a column name", col)
		}
		return f(col), nil
	}
}

func identOK(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
