package api

import (
	"context"
	"encoding/json"
	"net/http"
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
	h := Authenticated(f, Handler(f, 1024), toks, "acme")
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
