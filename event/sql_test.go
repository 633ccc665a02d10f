package event

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/template"
)

// The generated multiIf must send every state to State.Public: parse its
// branches back and compare.
func TestSQLPublicStatusMatchesPublic(t *testing.T) {
	e := SQLPublicStatus("x")
	branches := regexp.MustCompile(`x IN \(([^)]*)\), '([A-Z]+)'`).FindAllStringSubmatch(e, -1)
	got := map[string]string{}
	for _, b := range branches {
		for _, q := range strings.Split(b[1], ", ") {
			got[strings.Trim(q, "'")] = b[2]
		}
	}
	def := regexp.MustCompile(`'([A-Z]+)'\)$`).FindStringSubmatch(e)
	if def == nil {
		t.Fatalf("no default branch in %s", e)
	}
	for _, s := range States() {
		want, ok := got[s.String()]
		if !ok {
			want = def[1]
		}
		if want != s.Public() {
			t.Errorf("%s maps to %s in SQL, %s in Go (%s)", s, want, s.Public(), e)
		}
	}
}

// requireRankList checks that the state list pattern's first group finds in
// expr holds every state at the position of its rank.
func requireRankList(t *testing.T, expr, pattern string) {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(expr)
	if m == nil {
		t.Fatalf("unexpected expression %s", expr)
	}
	for i, q := range strings.Split(m[1], ",") {
		s, err := ParseState(strings.Trim(q, "'"))
		if err != nil || int(s.Rank()) != i+1 {
			t.Errorf("position %d holds %s (rank %d): the SQL would disagree with Rank", i+1, q, s.Rank())
		}
	}
}

func TestSQLStateRankListsStatesInRankOrder(t *testing.T) {
	requireRankList(t, SQLStateRank("c"), `indexOf\(\[([^\]]*)\], c\)`)
}

// The state key's two halves: seq above, the rank of SQLStateRank below,
// and SQLStateOfKey reads the rank back through the same list.
func TestSQLStateKeyAndStateOfKeyAgree(t *testing.T) {
	if got, want := SQLStateKey("seq", "to_state"), "toUInt64(seq) * 256 + "+SQLStateRank("to_state"); got != want {
		t.Errorf("SQLStateKey = %s, want %s", got, want)
	}
	requireRankList(t, SQLStateOfKey("max(k)"), `^arrayElement\(\[([^\]]*)\], toUInt8\(modulo\(max\(k\), 256\)\)\)$`)
	if base, _ := strconv.Atoi(stateKeyBase); int(StateExpired.Rank()) >= base {
		t.Errorf("ranks reach %d: they no longer fit below the seq in the key", StateExpired.Rank())
	}
}

func TestSQLIsTerminal(t *testing.T) {
	e := SQLIsTerminal("c")
	for _, s := range States() {
		if strings.Contains(e, SQLLiteral(s.String())) != s.Terminal() {
			t.Errorf("%s: in %s = %v, Terminal = %v", s, e, !s.Terminal(), s.Terminal())
		}
	}
}

func TestSQLIsWaiting(t *testing.T) {
	e := SQLIsWaiting("c")
	for _, s := range States() {
		if strings.Contains(e, SQLLiteral(s.String())) != s.Waiting() {
			t.Errorf("%s: in %s = %v, Waiting = %v", s, e, !s.Waiting(), s.Waiting())
		}
	}
}

func TestTemplateFuncs(t *testing.T) {
	render := func(src string) (string, error) {
		tm, err := template.New("").Funcs(TemplateFuncs()).Parse(src)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		err = tm.Execute(&b, nil)
		return b.String(), err
	}
	for src, want := range map[string]string{
		`{{state "expired"}}`:                     SQLLiteral(StateExpired.String()),
		`{{public "failed"}}`:                     SQLLiteral(PublicFailed),
		`{{statesOf "failed"}}`:                   SQLList([]State{StateFailed, StateExpired}),
		`{{stateList}}`:                           SQLList(States()),
		`{{isTerminal "to_state"}}`:               SQLIsTerminal("to_state"),
		`{{isWaiting "e_state"}}`:                 SQLIsWaiting("e_state"),
		`{{transitionSpanID "request_id" "seq"}}`: SQLTransitionSpanID("request_id", "seq"),
		`{{stateKey "seq" "to_state"}}`:           SQLStateKey("seq", "to_state"),
		`{{stateOfKey "max(state_key)"}}`:         SQLStateOfKey("max(state_key)"),
	} {
		if got, err := render(src); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", src, got, err, want)
		}
	}
	for _, bad := range []string{`{{state "done"}}`, `{{state ""}}`, `{{public "expired"}}`, `{{statesOf "x"}}`, `{{stateRank "a; b"}}`, `{{publicStatus ""}}`, `{{isWaiting "x y"}}`, `{{transitionSpanID "request_id" "seq)"}}`} {
		if got, err := render(bad); err == nil {
			t.Errorf("%s rendered %q, want an error", bad, got)
		}
	}
}

func TestPublicStatuses(t *testing.T) {
	ps := PublicStatuses()
	if len(ps) != 4 || ps[0] != PublicRunning {
		t.Fatalf("PublicStatuses = %v", ps)
	}
	seen := map[string]bool{}
	for _, s := range States() {
		seen[s.Public()] = true
		if !IsPublicStatus(s.Public()) {
			t.Errorf("%s maps to %s, which PublicStatuses lacks", s, s.Public())
		}
	}
	if len(seen) != len(ps) {
		t.Errorf("states map to %d public statuses, PublicStatuses has %d", len(seen), len(ps))
	}
	if got := StatesOf(PublicRunning); len(got) != 4 || got[0] != StateQueued || got[3] != StateTerminating {
		t.Errorf("StatesOf(RUNNING) = %v", got)
	}
}
