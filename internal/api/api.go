// Package api is statustrace's HTTP JSON API: event lists, lookups,
// statistics, NDJSON exports, and an action-style endpoint that speaks the
// reference platform's ListAsyncEvents / GetAsyncEventStatus. Every request
// carries a bearer token that maps to one tenant (optionally some of its
// namespaces); every query is limited to it. See README.md.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/statustrace/statustrace/internal/schedclient"
	"github.com/statustrace/statustrace/queries"
)

// Backend runs the queries; *queries.Store is the real one.
type Backend interface {
	Get(ctx context.Context, sc queries.Scope, requestID string) (*queries.EventDetail, error)
	List(ctx context.Context, sc queries.Scope, f queries.ListFilter) (*queries.Page, error)
	Count(ctx context.Context, sc queries.Scope, f queries.ListFilter) (uint64, error)
	Stats(ctx context.Context, sc queries.Scope, q queries.StatsQuery) (*queries.Stats, error)
	Durations(ctx context.Context, sc queries.Scope, q queries.StatsQuery) (*queries.Durations, error)
	ExportEvents(ctx context.Context, sc queries.Scope, f queries.ListFilter, fn func(queries.Event) error) error
	CountTransitions(ctx context.Context, sc queries.Scope, w queries.WindowFilter) (uint64, error)
	ExportTransitions(ctx context.Context, sc queries.Scope, w queries.WindowFilter, fn func(queries.TransitionRecord) error) error
}

// Config configures a Server.
type Config struct {
	Backend Backend
	Tokens  *Tokens
	Log     *slog.Logger
	// QueryTimeout bounds one query of a list, lookup or statistics request
	// (not exports, which end when the client goes away). Default 30s.
	QueryTimeout time.Duration
	// LiveInterval is how often a live stream polls ClickHouse (default
	// 500ms). Live streams and GET /v1/functions need a Backend that is
	// also a ChangeSource / FunctionSource (*queries.Store is both).
	LiveInterval time.Duration
	// Scheduler, when set, receives the actions (terminate, status trace)
	// of callers whose tenant is SchedulerTenant.
	Scheduler       *schedclient.Client
	SchedulerTenant string
}

// Server serves the API. Create it with New and mount Handler.
type Server struct {
	cfg   Config
	mux   *http.ServeMux
	hub   *Hub
	fnSrc FunctionSource
}

// New validates cfg and builds the routes.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("api: no backend")
	}
	if cfg.Tokens == nil || cfg.Tokens.Len() == 0 {
		return nil, errors.New("api: no API tokens configured (a token maps to a tenant; see --token, --token-file, STATUSTRACE_API_TOKENS)")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = 30 * time.Second
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	if src, ok := cfg.Backend.(ChangeSource); ok {
		s.hub = NewHub(src, cfg.LiveInterval, cfg.Log)
		s.mux.Handle("GET /v1/live", s.authed(s.liveEvents))
		s.mux.Handle("GET /v1/events/{request_id}/live", s.authed(s.liveEvents))
	}
	if src, ok := cfg.Backend.(FunctionSource); ok {
		s.fnSrc = src
		s.mux.Handle("GET /v1/functions", s.authed(s.functions))
	}
	s.mux.Handle("POST /v1/events/{request_id}/terminate", s.authed(s.terminate))
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		s.mux.Handle(m+" /v1/functions/{namespace}/{function}/status-trace", s.authed(s.statusTrace))
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.Handle("GET /v1/events", s.authed(s.listEvents))
	s.mux.Handle("GET /v1/events/{request_id}", s.authed(s.getEvent))
	s.mux.Handle("GET /v1/events/{request_id}/trace", s.authed(s.eventTrace))
	s.mux.Handle("GET /v1/stats", s.authed(s.stats))
	s.mux.Handle("GET /v1/export", s.authed(s.export))
	s.mux.Handle("POST /v1/action", s.action())
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return s, nil
}

// Tokens are the server's API tokens (the console signs in with them).
func (s *Server) Tokens() *Tokens { return s.cfg.Tokens }

// Backend is the server's query backend.
func (s *Server) Backend() Backend { return s.cfg.Backend }

// Authenticate resolves a token to its principal.
func (s *Server) Authenticate(token string) (Principal, bool) { return lookup(s.cfg.Tokens, token) }

// Close ends the live streams (call before a graceful HTTP shutdown).
func (s *Server) Close() {
	if s.hub != nil {
		s.hub.Close()
	}
}

// Handler is the API with request IDs and panic recovery around it.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		start := time.Now()
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.cfg.Log.Error("api: panic", "request_id", id, "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, codeInternal, "internal error (request "+id+")")
			}
			s.cfg.Log.Debug("api request", "request_id", id, "method", r.Method, "path", r.URL.Path, "duration", time.Since(start))
		}()
		s.mux.ServeHTTP(w, r)
	})
}

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

type principalKey struct{}

func principal(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// authed resolves the bearer token before h runs: no token or an unknown one
// is 401 and h never sees the request.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="statustrace"`)
			writeError(w, http.StatusUnauthorized, codeUnauthenticated, "missing or unknown API token (Authorization: Bearer <token>)")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func (s *Server) authenticate(r *http.Request) (Principal, bool) {
	tok, ok := bearer(r)
	if !ok {
		return Principal{}, false
	}
	return lookup(s.cfg.Tokens, tok)
}

// Error codes of the JSON errors.
const (
	codeInvalid         = "invalid_parameter"
	codeNotFound        = "not_found"
	codeUnauthenticated = "unauthenticated"
	codeInternal        = "internal"
	codeUnavailable     = "unavailable"
	codeTooLarge        = "request_too_large"
)

// Error is the body of every error answer.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, Error{Code: code, Message: msg})
}

// fail answers err: a parameter error is 400 with its reason, a missing
// event 404, anything else 500 without internals (they go to the log).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := s.classify(r, err)
	writeError(w, status, code, msg)
}

func (s *Server) classify(r *http.Request, err error) (int, string, string) {
	var pe *queries.ParamError
	switch {
	case errors.As(err, &pe):
		return http.StatusBadRequest, codeInvalid, pe.Error()
	case errors.Is(err, queries.ErrNotFound):
		return http.StatusNotFound, codeNotFound, "no such event"
	case errors.Is(err, context.DeadlineExceeded):
		s.cfg.Log.Warn("api: query timed out", "request_id", requestID(r.Context()), "path", r.URL.Path, "err", err)
		return http.StatusServiceUnavailable, codeUnavailable, "the query took too long; narrow the filter or the time range (request " + requestID(r.Context()) + ")"
	default:
		s.cfg.Log.Error("api: query failed", "request_id", requestID(r.Context()), "path", r.URL.Path, "err", err)
		return http.StatusInternalServerError, codeInternal, "internal error (request " + requestID(r.Context()) + ")"
	}
}

func (s *Server) queryCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := parseListQuery(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.queryCtx(r)
	defer cancel()
	page, err := s.cfg.Backend.List(ctx, principal(r.Context()).Scope(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.queryCtx(r)
	defer cancel()
	if d, ok := s.eventInScope(ctx, w, r); ok {
		writeJSON(w, http.StatusOK, d)
	}
}

// eventInScope is the start of every GET /v1/events/{request_id}... route:
// no query parameters, a valid request ID, and the event looked up in the
// caller's scope. When ok is false it has answered with the error.
func (s *Server) eventInScope(ctx context.Context, w http.ResponseWriter, r *http.Request) (d *queries.EventDetail, ok bool) {
	q, err := parseQuery(r.URL.RawQuery)
	if err == nil {
		err = onlyParams(q)
	}
	id := r.PathValue("request_id")
	if err == nil {
		err = checkKey("request_id", id)
	}
	if err == nil {
		d, err = s.cfg.Backend.Get(ctx, principal(r.Context()).Scope(), id)
	}
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return d, true
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	raw, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q, withDurations, err := parseStatsQuery(raw)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.queryCtx(r)
	defer cancel()
	sc := principal(r.Context()).Scope()
	st, err := s.cfg.Backend.Stats(ctx, sc, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if withDurations {
		d, err := s.cfg.Backend.Durations(ctx, sc, q)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		st.Durations = d
	}
	if b, ok := s.cfg.Backend.(BacklogBackend); ok {
		bl, err := b.Backlog(ctx, sc, queries.BacklogQuery{Namespace: q.Namespace, Function: q.Function, Qualifier: q.Qualifier})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		st.Backlog = bl
	}
	writeJSON(w, http.StatusOK, st)
}
