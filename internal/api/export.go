package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/statustrace/statustrace/queries"
)

// Export kinds.
const (
	KindEvents      = "events"      // one line per event: its current status
	KindTransitions = "transitions" // one line per transition
)

var exportParams = paramSet{"kind", "from", "to", "namespace", "function", "qualifier", "invoke_type", "status", "order"}

// exportRequest is a parsed GET /v1/export.
type exportRequest struct {
	kind   string
	events queries.ListFilter   // KindEvents: the window is on start time
	window queries.WindowFilter // KindTransitions: the window is on transition time
}

func parseExport(q url.Values) (exportRequest, error) {
	var er exportRequest
	if err := exportParams.check(q); err != nil {
		return er, err
	}
	kind, err := single(q, "kind")
	if err != nil {
		return er, err
	}
	switch kind {
	case "", KindEvents:
		er.kind = KindEvents
	case KindTransitions:
		er.kind = KindTransitions
	default:
		return er, bad("kind", "%.40q: want events or transitions", kind)
	}
	w, err := requiredWindow(q)
	if err != nil {
		return er, err
	}
	keys := map[string]*string{}
	if er.kind == KindEvents {
		keys = map[string]*string{"namespace": &er.events.Namespace, "function": &er.events.Function, "qualifier": &er.events.Qualifier}
	} else {
		keys = map[string]*string{"namespace": &er.window.Namespace, "function": &er.window.Function, "qualifier": &er.window.Qualifier}
		for _, k := range []string{"invoke_type", "status", "order"} {
			if q.Has(k) {
				return er, bad(k, "applies to kind=events only")
			}
		}
	}
	for k, dst := range keys {
		v, err := single(q, k)
		if err != nil {
			return er, err
		}
		if err := checkKey(k, v); err != nil {
			return er, err
		}
		*dst = v
	}
	if er.kind == KindTransitions {
		er.window.Window = w
		return er, er.window.Validate()
	}
	er.events.Start = w
	if er.events.InvokeTypes, err = exactList(q, "invoke_type"); err != nil {
		return er, err
	}
	er.events.Statuses = list(q, "status")
	order, err := single(q, "order")
	if err != nil {
		return er, err
	}
	if order == "" {
		order = "asc" // oldest first: what an archive wants
	}
	if er.events.Desc, err = queries.ParseDesc(order); err != nil {
		return er, err
	}
	return er, er.events.Validate()
}

// export streams a window as NDJSON. X-Total-Count says how many lines will
// follow (so a client can show progress). If the query fails after the
// first line the status is already sent: the stream then ends with one
// {"error": {...}} line, which a reader must treat as a failed export.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	er, err := parseExport(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	sc := principal(ctx).Scope()
	var total uint64
	cctx, cancel := s.queryCtx(r)
	if er.kind == KindEvents {
		total, err = s.cfg.Backend.Count(cctx, sc, er.events)
	} else {
		total, err = s.cfg.Backend.CountTransitions(cctx, sc, er.window)
	}
	cancel()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Total-Count", strconv.FormatUint(total, 10))
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if er.kind == KindEvents {
		err = s.cfg.Backend.ExportEvents(ctx, sc, er.events, func(e queries.Event) error { return enc.Encode(e) })
	} else {
		err = s.cfg.Backend.ExportTransitions(ctx, sc, er.window, func(t queries.TransitionRecord) error { return enc.Encode(t) })
	}
	if err != nil && ctx.Err() == nil {
		_, code, msg := s.classify(r, err)
		_ = enc.Encode(map[string]Error{"error": {Code: code, Message: msg}})
	}
	_ = bw.Flush()
}
