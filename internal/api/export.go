package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
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

func parseExport(q url.Values) (ExportRequest, error) {
	var er ExportRequest
	if err := exportParams.check(q); err != nil {
		return er, err
	}
	kind, err := single(q, "kind")
	if err != nil {
		return er, err
	}
	switch kind {
	case "", KindEvents:
		er.Kind = KindEvents
	case KindTransitions:
		er.Kind = KindTransitions
	default:
		return er, bad("kind", "%.40q: want events or transitions", kind)
	}
	w, err := requiredWindow(q)
	if err != nil {
		return er, err
	}
	keys := map[string]*string{}
	if er.Kind == KindEvents {
		keys = map[string]*string{"namespace": &er.Events.Namespace, "function": &er.Events.Function, "qualifier": &er.Events.Qualifier}
	} else {
		keys = map[string]*string{"namespace": &er.Window.Namespace, "function": &er.Window.Function, "qualifier": &er.Window.Qualifier}
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
	if er.Kind == KindTransitions {
		er.Window.Window = w
		return er, er.Window.Validate()
	}
	er.Events.Start = w
	if er.Events.InvokeTypes, err = exactList(q, "invoke_type"); err != nil {
		return er, err
	}
	if er.Events.Statuses, err = list(q, "status"); err != nil {
		return er, err
	}
	order, err := single(q, "order")
	if err != nil {
		return er, err
	}
	if order == "" {
		order = "asc" // oldest first: what an archive wants
	}
	if er.Events.Desc, err = queries.ParseDesc(order); err != nil {
		return er, err
	}
	return er, er.Events.Validate()
}

// ExportTo writes the export r of scope sc from b to w as NDJSON, one JSON
// object per line (an Event for KindEvents, a TransitionRecord for
// KindTransitions). total is called with the number of lines before the
// first is written (it is counted first; rows that arrive meanwhile may make
// the stream a little longer); line after each line. The API and the CLI's
// direct mode both use it, so the two give the same bytes.
func ExportTo(ctx context.Context, b Backend, sc queries.Scope, r ExportRequest, w io.Writer, total func(uint64) error, line func()) error {
	var (
		n   uint64
		err error
	)
	if r.Kind == KindTransitions {
		n, err = b.CountTransitions(ctx, sc, r.Window)
	} else {
		n, err = b.Count(ctx, sc, r.Events)
	}
	if err != nil {
		return err
	}
	if total != nil {
		if err := total(n); err != nil {
			return err
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	emit := func(v any) error {
		if err := enc.Encode(v); err != nil {
			return err
		}
		if line != nil {
			line()
		}
		return nil
	}
	if r.Kind == KindTransitions {
		err = b.ExportTransitions(ctx, sc, r.Window, func(t queries.TransitionRecord) error { return emit(t) })
	} else {
		err = b.ExportEvents(ctx, sc, r.Events, func(e queries.Event) error { return emit(e) })
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// export streams a window as NDJSON. X-Total-Count says how many lines will
// follow (so a client can show progress). If the query fails after the
// status is sent, the stream ends with one {"error": {...}} line, which a
// reader must treat as a failed export.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	er, err := parseExport(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	sent := false
	err = ExportTo(ctx, s.cfg.Backend, principal(ctx).Scope(), er, w, func(n uint64) error {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Total-Count", strconv.FormatUint(n, 10))
		w.WriteHeader(http.StatusOK)
		sent = true
		return nil
	}, nil)
	switch {
	case err == nil:
	case !sent:
		s.fail(w, r, err)
	case ctx.Err() == nil:
		_, code, msg := s.classify(r, err)
		b, _ := json.Marshal(map[string]Error{"error": {Code: code, Message: msg}})
		_, _ = w.Write(append(b, '\n'))
	}
}
