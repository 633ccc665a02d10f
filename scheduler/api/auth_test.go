package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statustrace/statustrace/internal/authtoken"
)

// nsFake answers Event with a namespace, so namespace-limited tokens can be
// checked on event routes.
type nsFake struct{ fake }

func (f *nsFake) Event(_ context.Context, id string) (EventStatus, error) {
	if id == "ev-billing" {
		return EventStatus{RequestID: id, Namespace: "billing"}, nil
	}
	return EventStatus{}, ErrNotFound
}

func TestAuthenticated(t *testing.T) {
	toks := authtoken.NewTokens()
	require.NoError(t, toks.ParseTokenSpecs("full-token-0123456789=acme;billing-token-0123456789=acme:billing;other-tenant-0123456789=globex"))
	f := &nsFake{}
	h := Authenticated(f, Handler(f, 1024), toks, nil, "acme")
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	w := serve(h, http.MethodGet, "/healthz", "", nil)
	assert.Equal(t, http.StatusOK, w.Code, "health checks need no token")

	for name, hdr := range map[string]map[string]string{
		"none":         nil,
		"unknown":      bearer("not-a-known-token-at-all"),
		"basic":        {"Authorization": "Basic full-token-0123456789"},
		"other tenant": bearer("other-tenant-0123456789"),
	} {
		w := serve(h, http.MethodPost, "/v1/namespaces/ns/functions/fn/invocations", "{}", hdr)
		require.Equal(t, http.StatusUnauthorized, w.Code, name)
		var e Error
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e))
		assert.Equal(t, CodeUnauthenticated, e.Code, name)
		assert.Empty(t, f.invoke.Namespace, "%s: the service never saw the request", name)
	}

	w = serve(h, http.MethodPost, "/v1/namespaces/ns/functions/fn/invocations", "{}", bearer("full-token-0123456789"))
	assert.Equal(t, http.StatusAccepted, w.Code)
	assert.Equal(t, "ns", f.invoke.Namespace)

	// A namespace-limited token: its namespace only, for functions and events.
	f.invoke = InvokeRequest{}
	w = serve(h, http.MethodPost, "/v1/namespaces/ns/functions/fn/invocations", "{}", bearer("billing-token-0123456789"))
	assert.Equal(t, http.StatusNotFound, w.Code)
	assert.Empty(t, f.invoke.Namespace)
	w = serve(h, http.MethodPut, "/v1/namespaces/billing/functions/fn/status-trace", `{"enabled": false}`, bearer("billing-token-0123456789"))
	assert.Equal(t, http.StatusOK, w.Code)
	w = serve(h, http.MethodPost, "/v1/events/ev-billing/terminate", "", bearer("billing-token-0123456789"))
	assert.Equal(t, http.StatusAccepted, w.Code)
	assert.Equal(t, "ev-billing", f.terminate.RequestID)
	w = serve(h, http.MethodPost, "/v1/events/ev-other/terminate", "", bearer("billing-token-0123456789"))
	assert.Equal(t, http.StatusNotFound, w.Code)
}

// standingFake keeps one standing, so the standing routes exist.
type standingFake struct {
	nsFake
	standing string
}

func (f *standingFake) SetStanding(_ context.Context, ns string, st *string) (Standing, error) {
	f.standing = "good"
	if st != nil {
		f.standing = *st
	}
	return Standing{Tenant: "acme", Namespace: ns, Standing: f.standing}, nil
}

func (f *standingFake) Standing(_ context.Context, ns string) (Standing, error) {
	return Standing{Tenant: "acme", Namespace: ns, Standing: f.standing}, nil
}

// Tenant tokens read an account's standing but cannot change it (a tenant
// would lift its own arrears); admin tokens can, for their tenant only.
func TestStandingNeedsAdminToken(t *testing.T) {
	toks := authtoken.NewTokens()
	require.NoError(t, toks.ParseTokenSpecs("tenant-token-0123456789=acme;billing-token-0123456789=acme:billing"))
	admin := authtoken.NewTokens()
	require.NoError(t, admin.ParseTokenSpecs("admin-token-0123456789=acme;other-admin-0123456789=globex"))
	f := &standingFake{standing: "arrears"}
	h := Authenticated(f, Handler(f, 1024), toks, admin, "acme")
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	for _, tok := range []string{"tenant-token-0123456789", "billing-token-0123456789"} {
		for _, c := range []struct{ method, path, body string }{
			{http.MethodPut, "/v1/account/standing", `{"standing":"good"}`},
			{http.MethodDelete, "/v1/account/standing", ""},
			{http.MethodPut, "/v1/namespaces/billing/standing", `{"standing":"good"}`},
			{http.MethodDelete, "/v1/namespaces/billing/standing", ""},
		} {
			w := serve(h, c.method, c.path, c.body, bearer(tok))
			assert.Equal(t, "arrears", f.standing, "%s %s with %s changed the standing", c.method, c.path, tok)
			if tok == "billing-token-0123456789" && strings.HasPrefix(c.path, "/v1/account/") {
				// A namespace-limited token does not see the account at all.
				assert.Equal(t, http.StatusNotFound, w.Code, "%s %s with %s", c.method, c.path, tok)
				continue
			}
			require.Equal(t, http.StatusForbidden, w.Code, "%s %s with %s", c.method, c.path, tok)
			var e Error
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e))
			assert.Equal(t, CodeForbidden, e.Code)
			assert.Contains(t, e.Message, "admin token")
		}
	}
	w := serve(h, http.MethodGet, "/v1/namespaces/billing/standing", "", bearer("billing-token-0123456789"))
	assert.Equal(t, http.StatusOK, w.Code, "a tenant token reads its standing")

	w = serve(h, http.MethodPut, "/v1/account/standing", `{"standing":"good"}`, bearer("other-admin-0123456789"))
	assert.Equal(t, http.StatusUnauthorized, w.Code, "another tenant's admin token")
	assert.Equal(t, "arrears", f.standing)

	w = serve(h, http.MethodPut, "/v1/namespaces/billing/standing", `{"standing":"suspended"}`, bearer("admin-token-0123456789"))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "suspended", f.standing)
	w = serve(h, http.MethodDelete, "/v1/account/standing", "", bearer("admin-token-0123456789"))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "good", f.standing)
}
