package api

import (
	"context"
	"net/http"

	"github.com/statustrace/statustrace/queries"
)

// SpanSource finds the spans of an event's trace in otel_traces;
// *queries.Store has it.
type SpanSource interface {
	TraceSpans(ctx context.Context, d *queries.EventDetail) ([]queries.Span, error)
}

// EventTrace is the answer of GET /v1/events/{request_id}/trace.
type EventTrace struct {
	RequestID string         `json:"request_id"`
	TraceID   string         `json:"trace_id"` // "" when the event carries none
	Spans     []queries.Span `json:"spans"`    // empty without the full-trace pipeline
}

// eventTrace answers GET /v1/events/{request_id}/trace: the event is looked
// up in the caller's scope first, and only its own trace ID is read.
func (s *Server) eventTrace(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.queryCtx(r)
	defer cancel()
	d, ok := s.eventInScope(ctx, w, r)
	if !ok {
		return
	}
	out := EventTrace{RequestID: d.RequestID, TraceID: d.TraceID, Spans: []queries.Span{}}
	if src, ok := s.cfg.Backend.(SpanSource); ok && d.TraceID != "" {
		spans, err := src.TraceSpans(ctx, d)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if spans != nil {
			out.Spans = spans
		}
	}
	writeJSON(w, http.StatusOK, out)
}
