package api

import (
	"net/http"

	"github.com/statustrace/statustrace/internal/authtoken"
	"github.com/statustrace/statustrace/queries"
)

// Principal is what a token grants: one tenant, optionally only some of its
// namespaces.
type Principal struct {
	Tenant     string
	Namespaces []string // empty: every namespace of the tenant
}

// Scope is the query scope of p.
func (p Principal) Scope() queries.Scope {
	return queries.Scope{Tenant: p.Tenant, Namespaces: p.Namespaces}
}

// Allows reports whether p covers namespace.
func (p Principal) Allows(namespace string) bool { return authtoken.Grant(p).Allows(namespace) }

// Tokens maps API tokens to what they grant (the format lives in
// internal/authtoken, shared with the scheduler's API).
type Tokens = authtoken.Tokens

// NewTokens returns an empty token set.
func NewTokens() *Tokens { return authtoken.NewTokens() }

// MinTokenLen is the shortest token accepted.
const MinTokenLen = authtoken.MinTokenLen

// lookup resolves a bearer token to its principal.
func lookup(t *Tokens, token string) (Principal, bool) {
	g, ok := t.Lookup(token)
	return Principal(g), ok
}

// bearer extracts the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) { return authtoken.Bearer(r) }
