package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Refusals for an account that may not invoke: nothing is enqueued and no
// event exists for the request.
var (
	// ErrArrears: the account is in arrears — 402 account_in_arrears.
	ErrArrears = errors.New("account is in arrears")
	// ErrSuspended: the account is suspended — 403 account_suspended.
	ErrSuspended = errors.New("account is suspended")
)

// Error codes of the refusals.
const (
	CodeAccountInArrears = "account_in_arrears"
	CodeAccountSuspended = "account_suspended"
)

// Standing is an account's standing as the API shows it. Namespace is empty
// for the whole tenant.
type Standing struct {
	Tenant    string `json:"tenant"`
	Namespace string `json:"namespace,omitempty"`
	Standing  string `json:"standing"`
}

// StandingService is the part of a Service that manages account standing.
// Handler serves its routes when the Service implements it:
//
//	GET|PUT|DELETE /v1/account/standing                    the whole tenant
//	GET|PUT|DELETE /v1/namespaces/{namespace}/standing     one namespace
//	       PUT body {"standing": "good"|"arrears"|"suspended"}; DELETE goes
//	       back to the config file. 200 {"tenant", "namespace", "standing"}.
type StandingService interface {
	// SetStanding records a standing (nil: back to the config file) for the
	// tenant (namespace "") or a namespace, on every node; it returns the
	// standing now in force there.
	SetStanding(ctx context.Context, namespace string, standing *string) (Standing, error)
	Standing(ctx context.Context, namespace string) (Standing, error)
}

func (h *handler) standingRoutes(mux *http.ServeMux) {
	svc, ok := h.svc.(StandingService)
	if !ok {
		return
	}
	get := func(w http.ResponseWriter, r *http.Request) {
		st, err := svc.Standing(r.Context(), r.PathValue("namespace"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}
	put := func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Standing *string `json:"standing"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || body.Standing == nil {
			writeError(w, fmt.Errorf(`%w: body must be {"standing": "good"|"arrears"|"suspended"}`, ErrInvalid))
			return
		}
		st, err := svc.SetStanding(r.Context(), r.PathValue("namespace"), body.Standing)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}
	del := func(w http.ResponseWriter, r *http.Request) {
		st, err := svc.SetStanding(r.Context(), r.PathValue("namespace"), nil)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}
	for _, prefix := range []string{"/v1/account", "/v1/namespaces/{namespace}"} {
		mux.HandleFunc("GET "+prefix+"/standing", get)
		mux.HandleFunc("PUT "+prefix+"/standing", put)
		mux.HandleFunc("DELETE "+prefix+"/standing", del)
	}
}

// standingError maps a refusal to its status and code; ok is false for
// other errors.
func standingError(err error) (status int, code string, ok bool) {
	switch {
	case errors.Is(err, ErrArrears):
		return http.StatusPaymentRequired, CodeAccountInArrears, true
	case errors.Is(err, ErrSuspended):
		return http.StatusForbidden, CodeAccountSuspended, true
	}
	return 0, "", false
}
