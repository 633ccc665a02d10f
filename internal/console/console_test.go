package console_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/internal/authtoken"
	"github.com/statustrace/statustrace/internal/console"
	"github.com/statustrace/statustrace/internal/schedclient"
	schedapi "github.com/statustrace/statustrace/scheduler/api"
	"github.com/statustrace/statustrace/testkit/chtest"
	"github.com/statustrace/statustrace/testkit/querytest"
)

const (
	tokA     = "console-token-tenant-a-0001"
	tokB     = "console-token-tenant-b-0001"
	schedTok = "console-scheduler-token-0001"
)

// scheduler is the scheduler's real API handler (with its token check) on a
// service that records terminate requests.
type scheduler struct {
	mu         sync.Mutex
	terminated []schedapi.TerminateRequest
}

func (s *scheduler) Invoke(context.Context, schedapi.InvokeRequest) (schedapi.InvokeResult, error) {
	return schedapi.InvokeResult{}, schedapi.ErrInvalid
}

func (s *scheduler) Terminate(_ context.Context, r schedapi.TerminateRequest) (schedapi.TerminateResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.terminated = append(s.terminated, r)
	return schedapi.TerminateResult{RequestID: r.RequestID, Mode: r.Mode, State: event.StateTerminating.String()}, nil
}

func (s *scheduler) Event(context.Context, string) (schedapi.EventStatus, error) {
	return schedapi.EventStatus{}, schedapi.ErrNotFound
}

func (s *scheduler) SetTracing(_ context.Context, _, _ string, on *bool) (bool, error) {
	return on == nil || *on, nil
}

func (s *scheduler) Tracing(context.Context, string, string) (bool, error) { return true, nil }

func (s *scheduler) calls() []schedapi.TerminateRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]schedapi.TerminateRequest(nil), s.terminated...)
}

type env struct {
	srv   *httptest.Server
	sched *scheduler
	db    *chtest.DB
	fx    *querytest.Fixture
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := chtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, fx, err := querytest.Seed(ctx, db.Conn, db.Name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sched := &scheduler{}
	stoks := authtoken.NewTokens()
	if err := stoks.ParseTokenSpecs(schedTok + "=" + querytest.TenantA); err != nil {
		t.Fatal(err)
	}
	ssrv := httptest.NewServer(schedapi.Authenticated(sched, schedapi.Handler(sched, 1024), stoks, querytest.TenantA))
	t.Cleanup(ssrv.Close)
	sc, err := schedclient.New(ssrv.URL, schedTok)
	if err != nil {
		t.Fatal(err)
	}
	toks := api.NewTokens()
	if err := toks.ParseTokenSpecs(tokA + "=" + querytest.TenantA + ";" + tokB + "=" + querytest.TenantB); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := api.New(api.Config{Backend: st, Tokens: toks, Log: log, LiveInterval: 100 * time.Millisecond,
		Scheduler: sc, SchedulerTenant: querytest.TenantA})
	if err != nil {
		t.Fatal(err)
	}
	tu, err := console.ParseTraceURL("http://grafana.example/explore?trace={{.TraceID}}")
	if err != nil {
		t.Fatal(err)
	}
	con, err := console.New(console.Config{API: srv, TraceURL: tu, Actions: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", srv.Handler())
	mux.Handle("/", con.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); hs.Close() })
	return &env{srv: hs, sched: sched, db: db, fx: fx}
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type page struct {
	status int
	header http.Header
	body   string
}

func fetch(t *testing.T, c *http.Client, method, u string, form url.Values, hdr map[string]string) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header, string(b)}
}

func signIn(t *testing.T, e *env, token string) *http.Client {
	t.Helper()
	c := browser(t)
	p := fetch(t, c, http.MethodPost, e.srv.URL+"/ui/login", url.Values{"token": {token}, "next": {"/ui/events"}}, map[string]string{"Origin": e.srv.URL})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/events" {
		t.Fatalf("sign in: %d %s", p.status, p.header.Get("Location"))
	}
	sc := p.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/ui/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("session cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(sc, token) {
		t.Error("the cookie carries the token")
	}
	return c
}

var csrfRE = func(body string) string {
	i := strings.Index(body, `name="csrf" value="`)
	if i < 0 {
		return ""
	}
	rest := body[i+len(`name="csrf" value="`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func TestConsole(t *testing.T) {
	e := newEnv(t)
	u := e.srv.URL

	// Signed out: pages redirect to the sign-in page, the stream is 401.
	anon := browser(t)
	if p := fetch(t, anon, http.MethodGet, u+"/ui/events", nil, nil); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/ui/login") {
		t.Errorf("signed out: %d %s", p.status, p.header.Get("Location"))
	}
	if p := fetch(t, anon, http.MethodGet, u+"/ui/live", nil, nil); p.status != http.StatusUnauthorized {
		t.Errorf("signed-out stream: %d", p.status)
	}
	if p := fetch(t, anon, http.MethodPost, u+"/ui/login", url.Values{"token": {"wrong-token-0123456789"}}, nil); p.status != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", p.status)
	}
	if p := fetch(t, anon, http.MethodPost, u+"/ui/login", url.Values{"token": {tokA}}, map[string]string{"Origin": "http://evil.example"}); p.status != http.StatusForbidden {
		t.Errorf("cross-site sign-in: %d", p.status)
	}

	a := signIn(t, e, tokA)
	p := fetch(t, a, http.MethodGet, u+"/ui/?range=6h", nil, nil) // the fixture is 2h old
	if p.status != http.StatusOK || !strings.Contains(p.body, "default/resize") || !strings.Contains(p.body, "other/thumbnail") {
		t.Fatalf("functions: %d\n%s", p.status, p.body)
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	// Filters: FAILED shows the failed and the expired events with their messages.
	p = fetch(t, a, http.MethodGet, u+"/ui/events?status=FAILED&namespace=default&function=", nil, nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, querytest.FailedID) || !strings.Contains(p.body, "queued too long") ||
		strings.Contains(p.body, `data-request-id="`+querytest.FinishedID+`"`) {
		t.Errorf("FAILED events: %d\n%s", p.status, p.body)
	}
	p = fetch(t, a, http.MethodGet, u+"/ui/events/"+querytest.FailedID, nil, nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, "boom 1") || !strings.Contains(p.body, "boom 2") || !strings.Contains(p.body, "http://grafana.example/explore?trace=") {
		t.Errorf("event page: %d\n%s", p.status, p.body)
	}
	if p := fetch(t, a, http.MethodGet, u+"/ui/stats?range=6h", nil, nil); p.status != http.StatusOK || !strings.Contains(p.body, "HandlerError") {
		t.Errorf("stats: %d\n%s", p.status, p.body)
	}
	// Tenant B's event is a 404 for A, as a missing one.
	if p := fetch(t, a, http.MethodGet, u+"/ui/events/"+querytest.BOnlyID, nil, nil); p.status != http.StatusNotFound {
		t.Errorf("other tenant's event: %d", p.status)
	}
	if p := fetch(t, a, http.MethodGet, u+"/ui/events?request_id="+querytest.BOnlyID, nil, nil); strings.Contains(p.body, `data-request-id="`+querytest.BOnlyID+`"`) {
		t.Error("other tenant's event listed")
	}

	// Terminate: refused without the CSRF token or from another origin; sent
	// with both; never for an event the caller cannot see.
	p = fetch(t, a, http.MethodGet, u+"/ui/events/"+querytest.RunningID, nil, nil)
	csrf := csrfRE(p.body)
	if csrf == "" || !strings.Contains(p.body, "terminate-graceful") {
		t.Fatalf("running event page has no terminate form:\n%s", p.body)
	}
	term := u + "/ui/events/" + querytest.RunningID + "/terminate"
	if p := fetch(t, a, http.MethodPost, term, url.Values{"mode": {"graceful"}}, nil); p.status != http.StatusForbidden {
		t.Errorf("terminate without CSRF token: %d", p.status)
	}
	if p := fetch(t, a, http.MethodPost, term, url.Values{"mode": {"graceful"}, "csrf": {csrf}}, map[string]string{"Origin": "http://evil.example"}); p.status != http.StatusForbidden {
		t.Errorf("cross-origin terminate: %d", p.status)
	}
	if n := len(e.sched.calls()); n != 0 {
		t.Fatalf("refused terminates reached the scheduler: %d", n)
	}
	if p := fetch(t, a, http.MethodPost, term, url.Values{"mode": {"immediate"}, "csrf": {csrf}}, map[string]string{"Origin": u}); p.status != http.StatusSeeOther {
		t.Errorf("terminate: %d %s", p.status, p.body)
	}
	if c := e.sched.calls(); len(c) != 1 || c[0].RequestID != querytest.RunningID || c[0].Mode != schedapi.Immediate {
		t.Errorf("scheduler got %+v", c)
	}
	if p := fetch(t, a, http.MethodPost, u+"/ui/events/"+querytest.BOnlyID+"/terminate", url.Values{"mode": {"immediate"}, "csrf": {csrf}}, nil); p.status != http.StatusNotFound {
		t.Errorf("terminate another tenant's event: %d", p.status)
	}
	b := signIn(t, e, tokB)
	pb := fetch(t, b, http.MethodGet, u+"/ui/events/"+querytest.BOnlyID, nil, nil)
	if p := fetch(t, b, http.MethodPost, u+"/ui/events/"+querytest.BOnlyID+"/terminate", url.Values{"mode": {"immediate"}, "csrf": {csrfRE(pb.body)}}, nil); p.status != http.StatusNotFound {
		t.Errorf("tenant B (not the scheduler's) terminates: %d", p.status)
	}
	if p := fetch(t, b, http.MethodPost, term, url.Values{"mode": {"immediate"}, "csrf": {csrf}}, nil); p.status != http.StatusForbidden {
		t.Errorf("A's CSRF token in B's session: %d", p.status)
	}
	if n := len(e.sched.calls()); n != 1 {
		t.Errorf("scheduler calls: %d, want 1", n)
	}

	// Sign out ends the session server-side.
	if p := fetch(t, a, http.MethodPost, u+"/ui/logout", url.Values{"csrf": {csrf}}, nil); p.status != http.StatusSeeOther {
		t.Errorf("sign out: %d", p.status)
	}
	if p := fetch(t, a, http.MethodGet, u+"/ui/", nil, nil); p.status != http.StatusSeeOther {
		t.Errorf("after sign-out: %d", p.status)
	}
}

// TestLive: a stream sees a new transition of its event, and its id resumes.
func TestLive(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/events/"+querytest.RunningID+"/live", nil)
	req.Header.Set("Authorization", "Bearer "+tokA)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The event finishes now (seq 3 after QUEUED, RUNNING).
	now := time.Now().UTC()
	rows := querytest.History(event.Keys{Tenant: querytest.TenantA, Namespace: "default", Function: "resize", Qualifier: "LATEST", RequestID: querytest.RunningID},
		"async", now.Add(-time.Second), querytest.Step{To: event.StateRunning}, querytest.Step{To: event.StateFinished, After: time.Second})
	// Tenant B's event of the same ID changes too: A's stream must not see it.
	rowsB := querytest.History(event.Keys{Tenant: querytest.TenantB, Namespace: "default", Function: "resize", Qualifier: "LATEST", RequestID: querytest.RunningID},
		"async", now.Add(-time.Second), querytest.Step{To: event.StateRunning}, querytest.Step{To: event.StateFailed, After: time.Second})
	if err := querytest.Insert(ctx, e.db.Conn, append(rowsB, rows...)); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	var id, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
		if data != "" {
			break
		}
	}
	if !strings.Contains(data, `"request_id":"`+querytest.RunningID+`"`) || !strings.Contains(data, `"status":"FINISHED"`) || !strings.Contains(data, querytest.TenantA) {
		t.Fatalf("live change: id %s data %s (%v)", id, data, sc.Err())
	}
	resp.Body.Close()

	// Resuming from before that change sends it again; from its id, with the
	// look-back, it comes at most once more and the answer is A's.
	req, _ = http.NewRequest(http.MethodGet, e.srv.URL+"/v1/live?function=resize", nil)
	req.Header.Set("Authorization", "Bearer "+tokA)
	req.Header.Set("Last-Event-ID", "1")
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	resp, err = http.DefaultClient.Do(req.WithContext(rctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc = bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	seen := 0
	for sc.Scan() && seen < 5 {
		line := sc.Text()
		if strings.HasPrefix(line, "data: ") {
			seen++
			if strings.Contains(line, querytest.TenantB) {
				t.Errorf("tenant B's event in A's stream: %s", line)
			}
		}
	}
	if seen == 0 {
		t.Error("resume sent nothing")
	}
}
