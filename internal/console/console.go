// Package console is the web console `statustrace serve` serves under /ui/:
// server-rendered pages (html/template) of a tenant's functions, events, one
// event with its timeline and trace, and statistics, updated live over
// server-sent events, with the actions (terminate, status trace on/off) the
// API proxies to the scheduler. It signs in with an API token and keeps a
// server-side session behind an HttpOnly, SameSite=Strict cookie; every POST
// carries the session's CSRF token and must come from this origin. The only
// JavaScript is ours (assets/console.js) and uPlot (pinned, vendored in
// assets/), under a CSP without inline scripts. See README.md.
package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/queries"
	schedapi "github.com/statustrace/statustrace/scheduler/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/ui/"

// Config configures the console.
type Config struct {
	API *api.Server // tokens, queries, live streams and actions
	// TraceURL builds a trace's link from {{.TraceID}} (Grafana Explore,
	// Jaeger, Tempo); nil: no link.
	TraceURL *texttemplate.Template
	// Actions says whether actions are configured (serve has a scheduler).
	Actions bool
	Log     *slog.Logger
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL time.Duration
}

// ParseTraceURL checks a --trace-url template: it must render an http(s)
// URL from {{.TraceID}}.
func ParseTraceURL(s string) (*texttemplate.Template, error) {
	if s == "" {
		return nil, nil
	}
	t, err := texttemplate.New("trace-url").Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fmt.Errorf("trace URL template: %w", err)
	}
	u, err := renderTraceURL(t, "0123456789abcdef0123456789abcdef")
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return nil, fmt.Errorf("trace URL template: %q does not give an http(s) URL", s)
	}
	return t, nil
}

func renderTraceURL(t *texttemplate.Template, traceID string) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, struct{ TraceID string }{traceID}); err != nil {
		return "", fmt.Errorf("trace URL template: %w", err)
	}
	return b.String(), nil
}

// Console serves the pages.
type Console struct {
	cfg      Config
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil {
		return nil, errors.New("console: no API server")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	c := &Console{cfg: cfg, sessions: newSessions(cfg.SessionTTL), pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	for _, p := range []string{"login", "functions", "events", "event", "stats", "error"} {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", p, err)
		}
		c.pages[p] = t
	}
	assets, _ := fs.Sub(assetFS, "assets")
	c.mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", http.FileServerFS(assets)))
	c.mux.HandleFunc("GET /ui/login", c.loginPage)
	c.mux.HandleFunc("POST /ui/login", c.login)
	c.mux.HandleFunc("POST /ui/logout", c.authed(c.logout))
	c.mux.HandleFunc("GET /ui/{$}", c.authed(c.functionsPage))
	c.mux.HandleFunc("GET /ui/events", c.authed(c.eventsPage))
	c.mux.HandleFunc("GET /ui/events/{request_id}", c.authed(c.eventPage))
	c.mux.HandleFunc("GET /ui/stats", c.authed(c.statsPage))
	c.mux.HandleFunc("GET /ui/live", c.authed(c.live))
	c.mux.HandleFunc("POST /ui/events/{request_id}/terminate", c.authed(c.terminate))
	c.mux.HandleFunc("POST /ui/functions/{namespace}/{function}/tracing", c.authed(c.tracing))
	c.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, nil, http.StatusNotFound, "No such page.")
	})
	return c, nil
}

// csp allows our own scripts and styles only: no inline script, no eval.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Handler serves /ui/ (and redirects / to it).
func (c *Console) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if r.URL.Path == "/" || r.URL.Path == "/ui" {
			http.Redirect(w, r, Prefix, http.StatusFound)
			return
		}
		c.mux.ServeHTTP(w, r)
	})
}

type handler func(w http.ResponseWriter, r *http.Request, s *session)

// authed resolves the session; without one a page redirects to the sign-in
// page and anything else is 401. A POST must also pass the origin and CSRF
// checks.
func (c *Console) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, _ := c.sessions.get(r)
		if s == nil {
			if r.Method == http.MethodGet && r.URL.Path != "/ui/live" {
				http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if !sameOrigin(r) {
				http.Error(w, "cross-site request refused", http.StatusForbidden)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil || !s.csrfOK(r.PostForm.Get("csrf")) {
				http.Error(w, "missing or wrong CSRF token: reload the page", http.StatusForbidden)
				return
			}
		}
		h(w, r, s)
	}
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Tenant  string
	CSRF    string
	Actions bool
	Live    string // SSE URL the page follows, "" for none
	// LiveDelay is the most a live page waits after a change before it
	// re-renders (ms): lists batch changes, an event's page is prompt.
	LiveDelay int
	Now       time.Time
	Flash     string
	Data      any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Now = time.Now().UTC()
	if p.LiveDelay == 0 {
		p.LiveDelay = 2000
	}
	p.Actions = p.Actions || c.cfg.Actions
	var b bytes.Buffer
	tmpl := "layout.html"
	if r.URL.Query().Get("fragment") == "1" {
		tmpl = "content"
	}
	if err := c.pages[name].ExecuteTemplate(&b, tmpl, p); err != nil {
		c.cfg.Log.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (c *Console) base(s *session, title, nav string) page {
	p := page{Title: title, Nav: nav, Actions: c.cfg.Actions}
	if s != nil {
		p.Tenant, p.CSRF = s.p.Tenant, s.csrf
	}
	return p
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	p := c.base(s, http.StatusText(status), "")
	p.Data = msg
	c.render(w, r, status, "error", p)
}

// fail shows an error of the API's kinds with its status.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var pe *queries.ParamError
	switch {
	case errors.As(err, &pe):
		c.errorPage(w, r, s, http.StatusBadRequest, pe.Error())
	case errors.Is(err, queries.ErrNotFound):
		c.errorPage(w, r, s, http.StatusNotFound, "No such event.")
	default:
		c.cfg.Log.Error("console: query failed", "path", r.URL.Path, "err", err)
		c.errorPage(w, r, s, http.StatusInternalServerError, "The query failed; see the server log.")
	}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	p := c.base(nil, "Sign in", "")
	p.Data = safeNext(r.URL.Query().Get("next"))
	c.render(w, r, http.StatusOK, "login", p)
}

// safeNext keeps a post-login redirect on the console.
func safeNext(n string) string {
	if strings.HasPrefix(n, Prefix) && !strings.HasPrefix(n, "//") && !strings.ContainsAny(n, "\\\r\n") {
		return n
	}
	return Prefix
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	pr, ok := c.cfg.API.Authenticate(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok {
		p := c.base(nil, "Sign in", "")
		p.Data = safeNext(r.PostForm.Get("next"))
		p.Flash = "Unknown token."
		c.render(w, r, http.StatusUnauthorized, "login", p)
		return
	}
	id := c.sessions.create(pr)
	setCookie(w, r, id, int(c.cfg.SessionTTL/time.Second))
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	if _, id := c.sessions.get(r); id != "" {
		c.sessions.drop(id)
	}
	setCookie(w, r, "", -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// form returns the request's query without empty values (a GET form sends
// every field), with datetime-local inputs read as UTC.
func form(r *http.Request) url.Values {
	q := url.Values{}
	for k, vs := range r.URL.Query() {
		if k == "fragment" {
			continue
		}
		for _, v := range vs {
			if v = strings.TrimSpace(v); v != "" {
				if len(v) == 16 && v[10] == 'T' && strings.Count(v, ":") == 1 { // 2006-01-02T15:04
					v += ":00Z"
				}
				q.Add(k, v)
			}
		}
	}
	return q
}

// window reads from/to (default: the last `def`) and the quick ranges.
func window(q url.Values, def time.Duration) (url.Values, error) {
	if r := q.Get("range"); r != "" {
		d, err := time.ParseDuration(r)
		if err != nil || d <= 0 || d > 72*time.Hour {
			return nil, fmt.Errorf("range %q: want a duration up to 72h", r)
		}
		def = d
		q.Del("range")
		q.Del("from")
		q.Del("to")
	}
	if q.Get("from") == "" && q.Get("to") == "" {
		now := time.Now().UTC().Truncate(time.Second)
		q.Set("from", now.Add(-def).Format(time.RFC3339))
		q.Set("to", now.Add(time.Minute).Truncate(time.Minute).Format(time.RFC3339))
	}
	return q, nil
}

type functionsData struct {
	From, To  time.Time
	Functions []queries.FunctionSummary
	Charts    map[string]template.JS
	Tracing   map[string]string // on, off or unknown, when actions are configured
	Ranges    []string
}

var ranges = []string{"15m", "1h", "6h", "24h", "72h"}

func (c *Console) functionsPage(w http.ResponseWriter, r *http.Request, s *session) {
	q, err := window(form(r), time.Hour)
	if err != nil {
		c.errorPage(w, r, s, http.StatusBadRequest, err.Error())
		return
	}
	q.Set("durations", "true")
	sq, _, err := api.ParseStatsQuery(q)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	src, ok := c.cfg.API.Backend().(api.FunctionSource)
	if !ok {
		c.errorPage(w, r, s, http.StatusNotImplemented, "This backend has no function summaries.")
		return
	}
	fns, err := src.Functions(r.Context(), s.p.Scope(), sq, true)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d := functionsData{From: sq.Window.From, To: sq.Window.To, Functions: fns, Charts: map[string]template.JS{}, Ranges: ranges}
	for _, f := range fns {
		xs := steps(sq.Window.From, sq.Window.To, sq.Step)
		acc, failed := make([]uint64, len(xs)), make([]uint64, len(xs))
		for _, p := range f.Series {
			if i := stepIndex(xs, p.Time, sq.Step); i >= 0 {
				acc[i], failed[i] = p.Accepted, p.Failed
			}
		}
		d.Charts[f.Namespace+"/"+f.Function] = chartJSON(xs, []series{{"accepted", acc}, {"failed", failed}})
	}
	if c.cfg.Actions {
		// The switches come from the scheduler: a slow or down scheduler
		// shows "unknown" rather than holding the page.
		tctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		d.Tracing = map[string]string{}
		for _, f := range fns {
			t, err := c.cfg.API.FunctionTracing(tctx, s.p, f.Namespace, f.Function, nil, false)
			switch {
			case err != nil:
				d.Tracing[f.Namespace+"/"+f.Function] = "unknown"
			case t.Enabled:
				d.Tracing[f.Namespace+"/"+f.Function] = "on"
			default:
				d.Tracing[f.Namespace+"/"+f.Function] = "off"
			}
		}
	}
	p := c.base(s, "Functions", "functions")
	p.Live = "/ui/live"
	p.Data = d
	c.render(w, r, http.StatusOK, "functions", p)
}

// steps are the starts of the window's steps (Unix seconds), so a chart
// shows quiet steps as zeros rather than joining the busy ones.
func steps(from, to time.Time, step time.Duration) []int64 {
	if step <= 0 {
		return nil
	}
	var xs []int64
	for t := from.Truncate(step); t.Before(to) && len(xs) < queries.MaxSeriesPoints; t = t.Add(step) {
		xs = append(xs, t.Unix())
	}
	return xs
}

func stepIndex(xs []int64, t time.Time, step time.Duration) int {
	if len(xs) == 0 {
		return -1
	}
	i := int((t.Unix() - xs[0]) / int64(step/time.Second))
	if i < 0 || i >= len(xs) || xs[i] != t.Unix() {
		return -1
	}
	return i
}

type series struct {
	Label  string   `json:"label"`
	Values []uint64 `json:"values"`
}

// chartJSON is a chart's data for console.js (in a JSON script element, not
// executed).
func chartJSON(xs []int64, ss []series) template.JS {
	b, _ := json.Marshal(struct {
		X      []int64  `json:"x"`
		Series []series `json:"series"`
	}{xs, ss})
	return template.JS(b)
}

type eventsData struct {
	Filter   url.Values
	Page     *queries.Page
	Statuses []string
	NextURL  string
}

func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := form(r)
	f, err := api.ParseListQuery(q)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	pg, err := c.cfg.API.Backend().List(r.Context(), s.p.Scope(), f)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d := eventsData{Filter: q, Page: pg, Statuses: statusChoices()}
	if pg.NextCursor != "" {
		nq := url.Values{}
		for k, vs := range q {
			if k != "cursor" && k != "offset" {
				nq[k] = vs
			}
		}
		nq.Set("cursor", pg.NextCursor)
		d.NextURL = "/ui/events?" + nq.Encode()
	}
	p := c.base(s, "Events", "events")
	lq := url.Values{}
	for _, k := range []string{"namespace", "function", "qualifier", "request_id", "invoke_type", "status"} {
		if vs, ok := q[k]; ok {
			lq[k] = vs
		}
	}
	p.Live = "/ui/live?" + lq.Encode()
	p.Data = d
	c.render(w, r, http.StatusOK, "events", p)
}

// statusChoices are the filter's statuses: public ones, then the detailed
// states that are not public statuses.
func statusChoices() []string {
	out := []string{}
	seen := map[string]bool{}
	for st := event.StateQueued; st.Valid(); st++ {
		if p := st.Public(); !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for st := event.StateQueued; st.Valid(); st++ {
		if !seen[st.String()] {
			seen[st.String()] = true
			out = append(out, st.String())
		}
	}
	return out
}

type attemptErrors struct {
	Attempt uint32
	Errors  []queries.Transition
}

type eventData struct {
	Event    *queries.EventDetail
	Running  bool
	Attempts []attemptErrors
	TraceURL string
	Spans    []queries.Span
	SpansErr bool
}

func (c *Console) eventPage(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("request_id")
	d, err := c.cfg.API.Backend().Get(r.Context(), s.p.Scope(), id)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	ed := eventData{Event: d, Running: d.EndTime == nil}
	for _, t := range d.Timeline {
		if t.ErrorCode == "" && t.ErrorMessage == "" {
			continue
		}
		if k := len(ed.Attempts); k == 0 || ed.Attempts[k-1].Attempt != t.Attempt {
			ed.Attempts = append(ed.Attempts, attemptErrors{Attempt: t.Attempt})
		}
		ed.Attempts[len(ed.Attempts)-1].Errors = append(ed.Attempts[len(ed.Attempts)-1].Errors, t)
	}
	if d.TraceID != "" && c.cfg.TraceURL != nil {
		if u, err := renderTraceURL(c.cfg.TraceURL, d.TraceID); err == nil {
			ed.TraceURL = u
		}
	}
	if ts, ok := c.cfg.API.Backend().(interface {
		TraceSpans(ctx context.Context, d *queries.EventDetail) ([]queries.Span, error)
	}); ok && d.TraceID != "" {
		spans, err := ts.TraceSpans(r.Context(), d)
		if err != nil {
			c.cfg.Log.Warn("console: trace spans", "err", err)
			ed.SpansErr = true
		}
		ed.Spans = spans
	}
	p := c.base(s, "Event "+d.RequestID, "events")
	p.Live = "/ui/live?request_id=" + url.QueryEscape(d.RequestID)
	p.LiveDelay = 200
	p.Flash = r.URL.Query().Get("flash")
	p.Data = ed
	c.render(w, r, http.StatusOK, "event", p)
}

type statsData struct {
	Stats     *queries.Stats
	Durations *queries.Durations
	Chart     template.JS
	Filter    url.Values
	Ranges    []string
}

func (c *Console) statsPage(w http.ResponseWriter, r *http.Request, s *session) {
	q, err := window(form(r), time.Hour)
	if err != nil {
		c.errorPage(w, r, s, http.StatusBadRequest, err.Error())
		return
	}
	sq, _, err := api.ParseStatsQuery(q)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	b := c.cfg.API.Backend()
	st, err := b.Stats(r.Context(), s.p.Scope(), sq)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	du, err := b.Durations(r.Context(), s.p.Scope(), sq)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	step := time.Duration(st.StepSeconds) * time.Second
	xs := steps(sq.Window.From, sq.Window.To, step)
	var ss []series
	for state := event.StateQueued; state.Valid(); state++ {
		vals := make([]uint64, len(xs))
		var any bool
		for _, p := range st.Series {
			if i := stepIndex(xs, p.Time, step); i >= 0 {
				vals[i] = p.ByState[state.String()]
				any = any || vals[i] > 0
			}
		}
		if any {
			ss = append(ss, series{state.String(), vals})
		}
	}
	p := c.base(s, "Statistics", "stats")
	p.Data = statsData{Stats: st, Durations: du, Chart: chartJSON(xs, ss), Filter: q, Ranges: ranges}
	c.render(w, r, http.StatusOK, "stats", p)
}

func (c *Console) live(w http.ResponseWriter, r *http.Request, s *session) {
	if c.cfg.API.Live() == nil {
		http.Error(w, "no live streams on this backend", http.StatusNotImplemented)
		return
	}
	f, err := api.ParseListQuery(form(r))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.cfg.API.StreamEvents(w, r, s.p, f)
}

func (c *Console) terminate(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("request_id")
	mode := schedapi.TerminateMode(r.PostForm.Get("mode"))
	res, err := c.cfg.API.Terminate(r.Context(), s.p, id, mode)
	if err != nil {
		status, _, msg := c.cfg.API.ActionError(r, err)
		if status == http.StatusNotFound {
			c.errorPage(w, r, s, status, "No such event.")
			return
		}
		http.Redirect(w, r, "/ui/events/"+url.PathEscape(id)+"?flash="+url.QueryEscape("Terminate failed: "+msg), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/ui/events/"+url.PathEscape(id)+"?flash="+url.QueryEscape(fmt.Sprintf("Terminate (%s) sent: the scheduler says %s.", res.Mode, res.State)), http.StatusSeeOther)
}

func (c *Console) tracing(w http.ResponseWriter, r *http.Request, s *session) {
	ns, fn := r.PathValue("namespace"), r.PathValue("function")
	var (
		set   *bool
		reset bool
	)
	switch r.PostForm.Get("enabled") {
	case "on":
		v := true
		set = &v
	case "off":
		v := false
		set = &v
	case "reset":
		reset = true
	default:
		c.errorPage(w, r, s, http.StatusBadRequest, "enabled: want on, off or reset")
		return
	}
	_, err := c.cfg.API.FunctionTracing(r.Context(), s.p, ns, fn, set, reset)
	if err != nil {
		status, _, msg := c.cfg.API.ActionError(r, err)
		c.errorPage(w, r, s, status, "Status trace: "+msg)
		return
	}
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}
