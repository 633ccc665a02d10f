package api

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/statustrace/statustrace/queries"
)

// FunctionSource summarizes functions; *queries.Store has it.
type FunctionSource interface {
	Functions(ctx context.Context, sc queries.Scope, q queries.StatsQuery, durations bool) ([]queries.FunctionSummary, error)
}

// DefaultFunctionsWindow is the window of GET /v1/functions without from
// and to: the last hour.
const DefaultFunctionsWindow = time.Hour

// Functions is the answer of GET /v1/functions.
type Functions struct {
	From        time.Time                 `json:"from"`
	To          time.Time                 `json:"to"`
	StepSeconds int64                     `json:"step_seconds"`
	Functions   []queries.FunctionSummary `json:"functions"`
}

// functions answers GET /v1/functions: per function of the caller's scope,
// counts per status, failure rate, retries, a series and (durations=true)
// queue-wait and run percentiles, for [from, to) (default: the last hour).
func (s *Server) functions(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if q.Get("from") == "" && q.Get("to") == "" {
		now := time.Now().UTC()
		q.Set("from", now.Add(-DefaultFunctionsWindow).Format(time.RFC3339Nano))
		q.Set("to", now.Format(time.RFC3339Nano))
	}
	sq, withDurations, err := parseStatsQuery(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := s.queryCtx(r)
	defer cancel()
	fns, err := s.fnSrc.Functions(ctx, principal(r.Context()).Scope(), sq, withDurations)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Functions{From: sq.Window.From.UTC(), To: sq.Window.To.UTC(), StepSeconds: int64(sq.Step / time.Second), Functions: fns})
}

// ParseListQuery reads list filters from query values as GET /v1/events
// does (the console's Events page uses it, so both accept the same).
func ParseListQuery(q url.Values) (queries.ListFilter, error) { return parseListQuery(q) }

// ParseStatsQuery reads a statistics query as GET /v1/stats does.
func ParseStatsQuery(q url.Values) (queries.StatsQuery, bool, error) { return parseStatsQuery(q) }
