package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/statustrace/statustrace/internal/authtoken"
)

// Authenticated requires a bearer token from tokens on every route but
// GET /healthz (tokens as in the statustrace API: internal/authtoken). A
// token must grant tenant, the tenant this scheduler runs functions for; a
// token limited to some namespaces may act only on their functions and
// events. An unknown token is 401, a function or event outside the token's
// namespaces 404 (as if it did not exist).
//
// admin tokens (may be nil) grant the same and one thing more: changing an
// account's standing (PUT and DELETE on .../standing). A tenant token may
// only read it: a tenant that could lift its own arrears would make the
// refusal pointless, so that switch belongs to the operator or the billing
// system that holds an admin token.
func Authenticated(svc Service, next http.Handler, tokens, admin *authtoken.Tokens, tenant string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		tok, ok := authtoken.Bearer(r)
		var g authtoken.Grant
		isAdmin := false
		if ok {
			if g, ok = tokens.Lookup(tok); !ok && admin != nil {
				g, ok = admin.Lookup(tok)
				isAdmin = ok
			}
		}
		if !ok || g.Tenant != tenant {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scheduler"`)
			writeErrorStatus(w, http.StatusUnauthorized, CodeUnauthenticated, "missing or unknown API token (Authorization: Bearer <token>)")
			return
		}
		if len(g.Namespaces) > 0 && !allowed(r.Context(), svc, g, r.URL.Path) {
			writeErrorStatus(w, http.StatusNotFound, CodeNotFound, "not found")
			return
		}
		if !isAdmin && standingWrite(r) {
			writeErrorStatus(w, http.StatusForbidden, CodeForbidden, "changing an account's standing needs an admin token (admin_tokens, SCHEDULER_ADMIN_TOKENS); this token may only read it")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowed checks a namespace-limited grant against the namespace in the
// path, or the event's namespace for /v1/events/{id}/... routes.
func allowed(ctx context.Context, svc Service, g authtoken.Grant, path string) bool {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case len(parts) >= 3 && parts[0] == "v1" && parts[1] == "namespaces":
		return g.Allows(parts[2])
	case len(parts) >= 3 && parts[0] == "v1" && parts[1] == "events":
		ev, err := svc.Event(ctx, parts[2])
		return err == nil && g.Allows(ev.Namespace)
	}
	return false
}

// standingWrite reports whether r changes an account's standing.
func standingWrite(r *http.Request) bool {
	return (r.Method == http.MethodPut || r.Method == http.MethodDelete) && strings.HasSuffix(r.URL.Path, "/standing")
}
