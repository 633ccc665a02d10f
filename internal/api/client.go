package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/statustrace/statustrace/queries"
)

// Client calls the REST API (the CLI uses it with --server).
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	Token   string
	HTTP    *http.Client // default: http.DefaultClient
}

// APIError is an error answer of the API.
type APIError struct {
	Status int
	Body   Error
}

// Error is one readable line whatever the server sent (a proxy's HTML
// error page included): the CLI prints it as it is.
func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", oneLine(e.Body.Code, 60), e.Status, oneLine(e.Body.Message, 300))
}

// BadRequest reports whether the server refused the request's parameters
// (HTTP 400): the caller's mistake, not a failure of the service.
func (e *APIError) BadRequest() bool { return e.Status == http.StatusBadRequest }

// oneLine folds runs of white space (newlines included) into one space and
// cuts s to at most n bytes at a rune boundary.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func (c *Client) do(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	return c.send(ctx, http.MethodGet, path, q, nil, nil)
}

// send makes one request; an answer outside 2xx is an *APIError.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body io.Reader, hdr http.Header) (*http.Response, error) {
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		ae := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(b, &ae.Body) != nil || ae.Body.Code == "" {
			ae.Body = Error{Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(b))}
		}
		return nil, ae
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	return c.sendJSON(ctx, http.MethodGet, path, q, nil, v)
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ListValues encodes f as the query parameters of GET /v1/events.
func ListValues(f queries.ListFilter) url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("namespace", f.Namespace)
	set("function", f.Function)
	set("qualifier", f.Qualifier)
	set("request_id", f.RequestID)
	for _, v := range f.InvokeTypes {
		q.Add("invoke_type", v)
	}
	for _, v := range f.Statuses {
		q.Add("status", v)
	}
	for k, t := range map[string]time.Time{"start_from": f.Start.From, "start_to": f.Start.To, "end_from": f.End.From, "end_to": f.End.To} {
		if !t.IsZero() {
			q.Set(k, fmtTime(t))
		}
	}
	q.Set("order_by", f.OrderBy.String())
	if f.Desc {
		q.Set("order", "desc")
	} else {
		q.Set("order", "asc")
	}
	if f.Offset > 0 {
		q.Set("offset", strconv.FormatUint(f.Offset, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	set("cursor", f.Cursor)
	return q
}

// List calls GET /v1/events.
func (c *Client) List(ctx context.Context, f queries.ListFilter) (*queries.Page, error) {
	var p queries.Page
	return &p, c.getJSON(ctx, "/v1/events", ListValues(f), &p)
}

// Get calls GET /v1/events/{request_id}.
func (c *Client) Get(ctx context.Context, requestID string) (*queries.EventDetail, error) {
	var d queries.EventDetail
	return &d, c.getJSON(ctx, "/v1/events/"+url.PathEscape(requestID), nil, &d)
}

// StatsValues encodes q as the query parameters of GET /v1/stats.
func StatsValues(q queries.StatsQuery, durations bool) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"namespace": q.Namespace, "function": q.Function, "qualifier": q.Qualifier} {
		if s != "" {
			v.Set(k, s)
		}
	}
	v.Set("from", fmtTime(q.Window.From))
	v.Set("to", fmtTime(q.Window.To))
	if q.Step > 0 {
		v.Set("step", q.Step.String())
	}
	if durations {
		v.Set("durations", "true")
	}
	return v
}

// Stats calls GET /v1/stats.
func (c *Client) Stats(ctx context.Context, q queries.StatsQuery, durations bool) (*queries.Stats, error) {
	var s queries.Stats
	return &s, c.getJSON(ctx, "/v1/stats", StatsValues(q, durations), &s)
}

// ExportRequest says what to export.
type ExportRequest struct {
	Kind   string               // KindEvents or KindTransitions
	Events queries.ListFilter   // KindEvents: Start is the window (on start time); filters and order apply
	Window queries.WindowFilter // KindTransitions: the window is on transition time
}

// ExportValues encodes r as the query parameters of GET /v1/export.
func ExportValues(r ExportRequest) url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	if r.Kind == KindTransitions {
		v.Set("kind", KindTransitions)
		set("namespace", r.Window.Namespace)
		set("function", r.Window.Function)
		set("qualifier", r.Window.Qualifier)
		v.Set("from", fmtTime(r.Window.Window.From))
		v.Set("to", fmtTime(r.Window.Window.To))
		return v
	}
	v.Set("kind", KindEvents)
	set("namespace", r.Events.Namespace)
	set("function", r.Events.Function)
	set("qualifier", r.Events.Qualifier)
	for _, s := range r.Events.InvokeTypes {
		v.Add("invoke_type", s)
	}
	for _, s := range r.Events.Statuses {
		v.Add("status", s)
	}
	v.Set("from", fmtTime(r.Events.Start.From))
	v.Set("to", fmtTime(r.Events.Start.To))
	if r.Events.Desc {
		v.Set("order", "desc")
	}
	return v
}

// ErrExportIncomplete marks an export stream that ended with an error line.
var ErrExportIncomplete = errors.New("export incomplete")

// Export calls GET /v1/export and copies the NDJSON lines to w. total is
// called once with X-Total-Count (0 if absent), line after every line.
func (c *Client) Export(ctx context.Context, r ExportRequest, w io.Writer, total func(uint64), line func()) error {
	resp, err := c.do(ctx, "/v1/export", ExportValues(r))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, _ := strconv.ParseUint(resp.Header.Get("X-Total-Count"), 10, 64)
	if total != nil {
		total(n)
	}
	return CopyNDJSON(resp.Body, w, line)
}

// CopyNDJSON copies lines from r to w until EOF, and fails on the error line
// the server appends when an export breaks off.
func CopyNDJSON(r io.Reader, w io.Writer, line func()) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			if bytes.HasPrefix(b, []byte(`{"error":`)) {
				var e struct{ Error Error }
				_ = json.Unmarshal(b, &e)
				return fmt.Errorf("%w: %s: %s", ErrExportIncomplete, e.Error.Code, e.Error.Message)
			}
			if b[len(b)-1] != '\n' {
				return fmt.Errorf("%w: the stream ended mid-line", ErrExportIncomplete)
			}
			if _, werr := w.Write(b); werr != nil {
				return werr
			}
			if line != nil {
				line()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrExportIncomplete, err)
		}
	}
}
