package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/testkit/chtest"
	"github.com/statustrace/statustrace/testkit/querytest"
)

const (
	tokA        = "token-tenant-a-0123456789"
	tokADefault = "token-tenant-a-default-only"
	tokB        = "token-tenant-b-0123456789"
)

type env struct {
	srv *httptest.Server
	fx  *querytest.Fixture
}

// newEnv seeds a database with the standard fixture and serves the API on
// it over real HTTP.
func newEnv(t *testing.T) *env {
	t.Helper()
	db := chtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, fx, err := querytest.Seed(ctx, db.Conn, db.Name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	toks := api.NewTokens()
	if err := toks.ParseTokenSpecs(tokA + "=" + querytest.TenantA + ";" + tokADefault + "=" + querytest.TenantA + ":default;" + tokB + "=" + querytest.TenantB); err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Config{Backend: st, Tokens: toks, QueryTimeout: time.Minute, Log: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &env{srv: srv, fx: fx}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) get(t *testing.T, token, path string, q url.Values) answer {
	t.Helper()
	return e.getRaw(t, token, path, q.Encode())
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

func (a answer) apiError(t *testing.T) api.Error {
	t.Helper()
	var e api.Error
	a.decode(t, &e)
	if e.Code == "" || e.Message == "" {
		t.Errorf("error body without code or message: %s", a.body)
	}
	return e
}

// want400: the answer is a 400 invalid_parameter whose message contains want.
func (a answer) want400(t *testing.T, what, want string) {
	t.Helper()
	if a.status != http.StatusBadRequest {
		t.Errorf("%s: %d %.300s, want 400", what, a.status, a.body)
		return
	}
	if er := a.apiError(t); er.Code != "invalid_parameter" || !strings.Contains(er.Message, want) {
		t.Errorf("%s: %+v, want a message naming %q", what, er, want)
	}
}

func reqIDs(evs []queries.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.RequestID)
	}
	return out
}

func TestAPI(t *testing.T) {
	e := newEnv(t)
	t.Run("Auth", func(t *testing.T) { testAuth(t, e) })
	t.Run("Get", func(t *testing.T) { testGet(t, e) })
	t.Run("List", func(t *testing.T) { testList(t, e) })
	t.Run("BadParams", func(t *testing.T) { testBadParams(t, e) })
	t.Run("Hostile", func(t *testing.T) { testHostile(t, e) })
	t.Run("Stats", func(t *testing.T) { testStats(t, e) })
	t.Run("Export", func(t *testing.T) { testExport(t, e) })
	t.Run("Action", func(t *testing.T) { testAction(t, e) })
	t.Run("Client", func(t *testing.T) { testClient(t, e) })
	t.Run("StrictQuery", func(t *testing.T) { testStrictQuery(t, e) })
	t.Run("StrictActionBody", func(t *testing.T) { testStrictActionBody(t, e) })
}

// getRaw sends a query string exactly as written (url.Values cannot encode a
// malformed one).
func (e *env) getRaw(t *testing.T, token, path, rawQuery string) answer {
	t.Helper()
	u := e.srv.URL + path
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

// A query string that does not parse, or that is too large, is a 400 naming
// the problem on every endpoint: it must never drop the filters and answer
// with the whole tenant.
func testStrictQuery(t *testing.T, e *env) {
	from, to := strconv.FormatInt(e.fx.Base.Add(-time.Hour).UnixMilli(), 10), strconv.FormatInt(e.fx.Now.Add(time.Hour).UnixMilli(), 10)
	win := "from=" + from + "&to=" + to
	many := func(k string, n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte('&')
			}
			fmt.Fprintf(&b, "%s=v%d", k, i)
		}
		return b.String()
	}
	for _, c := range []struct {
		path, query string
		want        string // in the message
	}{
		{"/v1/events", "function=%zz", "%zz"},
		{"/v1/events", "function=resize;status=FAILED", "semicolon"},
		{"/v1/events", "function=resize&status=FAILED;", "semicolon"},
		{"/v1/events", many("invoke_type", 10_001), "parameters"},
		{"/v1/events", many("invoke_type", api.MaxQueryValues+1), strconv.Itoa(api.MaxQueryValues)},
		{"/v1/events", many("invoke_type", api.MaxFilterValues+1), strconv.Itoa(api.MaxFilterValues)},
		{"/v1/events", many("invoke_type", 30_000), "parameters"},
		{"/v1/events", "status=" + strings.Repeat("FAILED,", api.MaxFilterValues+1), strconv.Itoa(api.MaxFilterValues)},
		{"/v1/events/" + querytest.FinishedID, "x=%zz", "%zz"},
		{"/v1/stats", win + "&function=%zz", "%zz"},
		{"/v1/stats", win + ";function=resize", "semicolon"},
		{"/v1/stats", win + "&" + many("x", 10_001), "parameters"},
		{"/v1/export", win + "&function=%zz", "%zz"},
		{"/v1/export", win + "&function=a;b", "semicolon"},
		{"/v1/export", win + "&" + many("invoke_type", api.MaxFilterValues+1), strconv.Itoa(api.MaxFilterValues)},
	} {
		e.getRaw(t, tokA, c.path, c.query).want400(t, fmt.Sprintf("%s?%.80s", c.path, c.query), c.want)
	}
	// Up to the cap, a filter with many values is an ordinary query.
	if a := e.getRaw(t, tokA, "/v1/events", many("invoke_type", api.MaxFilterValues-1)+"&invoke_type=timer"); a.status != http.StatusOK {
		t.Errorf("%d invoke types: %d %s", api.MaxFilterValues, a.status, a.body)
	} else {
		var p queries.Page
		a.decode(t, &p)
		if !slices.Equal(reqIDs(p.Events), []string{querytest.FailedID}) {
			t.Errorf("%d invoke types: %q", api.MaxFilterValues, reqIDs(p.Events))
		}
	}
	// ?Action= on the action endpoint is parsed as strictly.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/action?Action=ListAsyncEvents;x", strings.NewReader(`{"FunctionName":"resize"}`))
	req.Header.Set("Authorization", "Bearer "+tokA)
	if a := do(t, req); a.status != http.StatusBadRequest || !strings.Contains(string(a.body), "semicolon") {
		t.Errorf("action with a semicolon in the query: %d %s", a.status, a.body)
	}
}

// The action body is parsed strictly: wrong types, trailing data, too many
// values in a filter are 400 with a message naming the field.
func testStrictActionBody(t *testing.T, e *env) {
	many := make([]string, api.MaxFilterValues+1)
	for i := range many {
		many[i] = fmt.Sprintf("t%d", i)
	}
	huge := make([]string, 30_000)
	for i := range huge {
		huge[i] = fmt.Sprintf("type-%d", i)
	}
	for _, c := range []struct {
		body any
		want string
	}{
		{`{"FunctionName": "resize"} {"FunctionName": "other"}`, "after the JSON object"},
		{`{"FunctionName": "resize"} x`, "after the JSON object"},
		{`{"FunctionName": "resize", "Limit": "ten"}`, "Limit"},
		{`{"FunctionName": "resize", "Limit": 1.5}`, "Limit"},
		{`{"FunctionName": 7}`, "FunctionName"},
		{`{"FunctionName": "resize", "Status": {"a": 1}}`, "Status"},
		{`[{"FunctionName": "resize"}]`, "object"},
		{map[string]any{"FunctionName": "resize", "InvokeType": many}, strconv.Itoa(api.MaxFilterValues)},
		{map[string]any{"FunctionName": "resize", "InvokeType": huge}, strconv.Itoa(api.MaxFilterValues)},
		{map[string]any{"FunctionName": "resize", "Status": many}, strconv.Itoa(api.MaxFilterValues)},
	} {
		status, aa, body := e.action(t, tokA, "ListAsyncEvents", c.body)
		if status != http.StatusBadRequest || aa.Response.Error == nil || aa.Response.Error.Code != "InvalidParameterValue" ||
			!strings.Contains(aa.Response.Error.Message, c.want) {
			t.Errorf("%.120v: %d %.300s, want 400 naming %q", c.body, status, body, c.want)
		}
	}
}

// StatusCode passes an event's error code through only when it is an HTTP
// error status; anything else (200, 0, negative, huge, not a number) maps
// to 500 (failed, expired) or 499 (aborted).
func TestStatusCode(t *testing.T) {
	for _, c := range []struct {
		status, code string
		want         int
	}{
		{"RUNNING", "", 0},
		{"FINISHED", "", 200},
		{"FINISHED", "500", 200},
		{"FAILED", "HandlerError", 500},
		{"FAILED", "404", 404},
		{"FAILED", "433", 433},
		{"FAILED", "599", 599},
		{"FAILED", "200", 500},
		{"FAILED", "204", 500},
		{"FAILED", "399", 500},
		{"FAILED", "0", 500},
		{"FAILED", "-404", 500},
		{"FAILED", "+404", 500},
		{"FAILED", " 404", 500},
		{"FAILED", "0404", 500},
		{"FAILED", "600", 500},
		{"FAILED", "99999999999999999999", 500},
		{"ABORTED", "200", 499},
		{"ABORTED", "", 499},
		{"ABORTED", "503", 503},
		{"EXPIRED", "301", 500},
	} {
		if got := api.StatusCode(c.status, c.code); got != c.want {
			t.Errorf("StatusCode(%q, %q) = %d, want %d", c.status, c.code, got, c.want)
		}
	}
}

func testAuth(t *testing.T, e *env) {
	for _, path := range []string{"/v1/events", "/v1/events/" + querytest.FinishedID, "/v1/stats", "/v1/export"} {
		for _, tok := range []string{"", "wrong-token-0123456789", tokA + "x"} {
			a := e.get(t, tok, path, nil)
			if a.status != http.StatusUnauthorized || a.apiError(t).Code != "unauthenticated" {
				t.Errorf("%s with token %q: %d %s", path, tok, a.status, a.body)
			}
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Basic "+tokA)
	if a := do(t, req); a.status != http.StatusUnauthorized {
		t.Errorf("Basic scheme accepted: %d", a.status)
	}
	if a := e.get(t, tokA, "/v2/nothing", nil); a.status != http.StatusNotFound || a.apiError(t).Code != "not_found" {
		t.Errorf("unknown path: %d %s", a.status, a.body)
	}
	if a := e.get(t, "", "/healthz", nil); a.status != http.StatusOK {
		t.Errorf("healthz: %d", a.status)
	}
}

func testGet(t *testing.T, e *env) {
	var d queries.EventDetail
	a := e.get(t, tokA, "/v1/events/"+querytest.FinishedID, nil)
	if a.status != http.StatusOK {
		t.Fatalf("get: %d %s", a.status, a.body)
	}
	a.decode(t, &d)
	if d.Status != "FINISHED" || len(d.Timeline) != 3 || d.Tenant != querytest.TenantA || d.EndTime == nil || a.header.Get("X-Request-Id") == "" {
		t.Errorf("tenant A's event: %s", a.body)
	}
	a = e.get(t, tokB, "/v1/events/"+querytest.FinishedID, nil)
	a.decode(t, &d)
	if a.status != http.StatusOK || d.Status != "FAILED" || d.Tenant != querytest.TenantB {
		t.Errorf("tenant B's event with the same request ID: %s", a.body)
	}

	// Another tenant's event, one outside the token's namespaces, one past
	// retention and a missing one all answer the same 404.
	missing := e.get(t, tokA, "/v1/events/does-not-exist", nil)
	if missing.status != http.StatusNotFound {
		t.Fatalf("missing: %d %s", missing.status, missing.body)
	}
	for _, c := range []struct{ tok, id string }{
		{tokB, querytest.FailedID}, {tokA, querytest.BOnlyID}, {tokADefault, querytest.AbortedID}, {tokA, querytest.OldID},
	} {
		a := e.get(t, c.tok, "/v1/events/"+url.PathEscape(c.id), nil)
		if a.status != missing.status || !bytes.Equal(a.body, missing.body) {
			t.Errorf("%s with %s: %d %s, want exactly the missing answer %s", c.id, c.tok, a.status, a.body, missing.body)
		}
	}
	if a := e.get(t, tokA, "/v1/events/"+querytest.FinishedID, url.Values{"x": {"1"}}); a.status != http.StatusBadRequest {
		t.Errorf("unknown parameter on get: %d", a.status)
	}
}

func listIDs(t *testing.T, e *env, tok string, q url.Values) ([]string, uint64) {
	t.Helper()
	a := e.get(t, tok, "/v1/events", q)
	if a.status != http.StatusOK {
		t.Fatalf("list %v: %d %s", q, a.status, a.body)
	}
	var p queries.Page
	a.decode(t, &p)
	return reqIDs(p.Events), p.Total
}

func testList(t *testing.T, e *env) {
	got, total := listIDs(t, e, tokA, url.Values{"order": {"asc"}})
	if !slices.Equal(got, querytest.VisibleA) || total != 6 {
		t.Errorf("all: %q %d", got, total)
	}
	got, _ = listIDs(t, e, tokA, nil) // default: start time, newest first
	want := slices.Clone(querytest.VisibleA)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Errorf("default order: %q", got)
	}
	base := e.fx.Base
	for name, c := range map[string]struct {
		q    url.Values
		want []string
	}{
		"status list":  {url.Values{"status": {"running,aborted"}}, []string{querytest.RunningID, querytest.AbortedID}},
		"status twice": {url.Values{"status": {"FINISHED", "EXPIRED"}}, []string{querytest.FinishedID, querytest.ExpiredID}},
		"function":     {url.Values{"function": {"resize"}, "qualifier": {"v1"}}, []string{querytest.FailedID}},
		"invoke type":  {url.Values{"invoke_type": {"timer"}}, []string{querytest.FailedID}},
		"start ms":     {url.Values{"start_from": {strconv.FormatInt(base.Add(time.Minute).UnixMilli(), 10)}, "start_to": {strconv.FormatInt(base.Add(3*time.Minute).UnixMilli(), 10)}}, []string{querytest.FailedID, querytest.RunningID}},
		"end rfc3339":  {url.Values{"end_from": {base.Format(time.RFC3339)}, "end_to": {base.Add(2 * time.Minute).Format(time.RFC3339)}}, []string{querytest.FinishedID, querytest.FailedID}},
		"request id":   {url.Values{"request_id": {querytest.ExpiredID}}, []string{querytest.ExpiredID}},
	} {
		c.q.Set("order", "asc")
		if got, total := listIDs(t, e, tokA, c.q); !slices.Equal(got, c.want) || total != uint64(len(c.want)) {
			t.Errorf("%s: %q total %d, want %q", name, got, total, c.want)
		}
	}
	if got, _ := listIDs(t, e, tokADefault, url.Values{"order": {"asc"}}); !slices.Equal(got, []string{querytest.FinishedID, querytest.FailedID, querytest.RunningID, querytest.ExpiredID}) {
		t.Errorf("namespace-limited token: %q", got)
	}
	if got, _ := listIDs(t, e, tokADefault, url.Values{"namespace": {"other"}}); len(got) != 0 {
		t.Errorf("namespace outside the token's: %q", got)
	}
	if got, _ := listIDs(t, e, tokB, url.Values{"order": {"asc"}}); !slices.Equal(got, []string{querytest.FinishedID, querytest.BOnlyID}) {
		t.Errorf("tenant B: %q", got)
	}

	// Cursor paging by end time.
	var all []string
	q := url.Values{"order_by": {"end_time"}, "order": {"asc"}, "limit": {"4"}}
	for range 5 {
		a := e.get(t, tokA, "/v1/events", q)
		var p queries.Page
		a.decode(t, &p)
		all = append(all, reqIDs(p.Events)...)
		if p.NextCursor == "" {
			break
		}
		q.Set("cursor", p.NextCursor)
	}
	if want := []string{querytest.RunningID, querytest.FinishedID, querytest.FailedID, querytest.AbortedID, querytest.ExpiredID, querytest.HostileRequestID}; !slices.Equal(all, want) {
		t.Errorf("cursor pages: %q, want %q", all, want)
	}
	// A cursor does not carry the tenant: tenant B replaying A's cursor sees only B's events.
	a := e.get(t, tokA, "/v1/events", url.Values{"limit": {"1"}, "order": {"asc"}})
	var p queries.Page
	a.decode(t, &p)
	if got, _ := listIDs(t, e, tokB, url.Values{"limit": {"5"}, "order": {"asc"}, "cursor": {p.NextCursor}}); !slices.Equal(got, []string{querytest.FinishedID, querytest.BOnlyID}) {
		t.Errorf("tenant B with tenant A's cursor: %q", got)
	}
}

func testBadParams(t *testing.T, e *env) {
	base := e.fx.Base
	cases := []struct {
		path string
		q    url.Values
		want string // in the message
	}{
		{"/v1/events", url.Values{"status": {"DONE"}}, "status"},
		{"/v1/events", url.Values{"status": {"FAILED' OR 1=1 --"}}, "status"},
		{"/v1/events", url.Values{"limit": {"101"}}, "limit"},
		{"/v1/events", url.Values{"limit": {"0"}}, "limit"},
		{"/v1/events", url.Values{"limit": {"ten"}}, "limit"},
		{"/v1/events", url.Values{"limit": {"5", "6"}}, "limit"},
		{"/v1/events", url.Values{"offset": {"-1"}}, "offset"},
		{"/v1/events", url.Values{"offset": {"100001"}}, "offset"},
		{"/v1/events", url.Values{"order_by": {"request_id"}}, "order_by"},
		{"/v1/events", url.Values{"order": {"sideways"}}, "order"},
		{"/v1/events", url.Values{"start_from": {"2026-13-01"}}, "start_from"},
		{"/v1/events", url.Values{"start_from": {base.Format(time.RFC3339)}, "start_to": {base.Add(-time.Second).Format(time.RFC3339)}}, "inverted"},
		{"/v1/events", url.Values{"end_from": {"1700000000000"}, "end_to": {"1700000000000"}}, "inverted"},
		{"/v1/events", url.Values{"cursor": {"!!!"}}, "cursor"},
		{"/v1/events", url.Values{"cursor": {"eyJvIjowfQ"}}, "cursor"},
		{"/v1/events", url.Values{"functoin": {"resize"}}, "unknown parameter"},
		{"/v1/events", url.Values{"request_id": {"\xff\xfe"}}, "UTF-8"},
		{"/v1/events", url.Values{"invoke_type": {""}}, "empty"},
		{"/v1/stats", nil, "required"},
		{"/v1/stats", url.Values{"from": {"1700000000000"}}, "required"},
		{"/v1/stats", url.Values{"from": {"1700000000000"}, "to": {"1600000000000"}}, "inverted"},
		{"/v1/stats", url.Values{"from": {"1700000000000"}, "to": {"1700003600000"}, "step": {"90s"}}, "step"},
		{"/v1/stats", url.Values{"from": {"1700000000000"}, "to": {"1700003600000"}, "durations": {"maybe"}}, "durations"},
		{"/v1/export", nil, "required"},
		{"/v1/export", url.Values{"from": {"1700000000000"}, "to": {"1700003600000"}, "kind": {"spans"}}, "kind"},
		{"/v1/export", url.Values{"from": {"1700000000000"}, "to": {"1700003600000"}, "kind": {"transitions"}, "status": {"FAILED"}}, "kind=events"},
	}
	for _, c := range cases {
		e.get(t, tokA, c.path, c.q).want400(t, fmt.Sprintf("%s %v", c.path, c.q), c.want)
	}
	if a := e.get(t, tokA, "/v1/events/"+url.PathEscape(querytest.Big), nil); a.status != http.StatusBadRequest {
		t.Errorf("10 kB request ID: %d", a.status)
	}
}

func testHostile(t *testing.T, e *env) {
	hostile := []string{querytest.HostileRequestID}
	for k, v := range map[string]string{
		"function": querytest.Hostile, "namespace": querytest.HostileNamespace, "qualifier": querytest.HostileQualifier,
		"request_id": querytest.HostileRequestID, "invoke_type": querytest.Hostile,
	} {
		if got, total := listIDs(t, e, tokA, url.Values{k: {v}}); !slices.Equal(got, hostile) || total != 1 {
			t.Errorf("%s=%q: %q", k, v, got)
		}
		for _, probe := range []string{"' OR ''='", `\`, "\n", "x' OR tenant != '", "{tenant:String}"} {
			if got, _ := listIDs(t, e, tokA, url.Values{k: {probe}}); len(got) != 0 {
				t.Errorf("%s=%q matched %q", k, probe, got)
			}
		}
		a := e.get(t, tokA, "/v1/events", url.Values{k: {querytest.Big}})
		if a.status != http.StatusBadRequest || !strings.Contains(a.apiError(t).Message, "256 bytes") {
			t.Errorf("10 kB %s: %d %s", k, a.status, a.body)
		}
		// Tenant B never sees A's hostile event, whatever the filter.
		if got, _ := listIDs(t, e, tokB, url.Values{k: {v}}); len(got) != 0 {
			t.Errorf("tenant B with %s=%q: %q", k, v, got)
		}
	}
	a := e.get(t, tokA, "/v1/events/"+url.PathEscape(querytest.HostileRequestID), nil)
	var d queries.EventDetail
	a.decode(t, &d)
	if a.status != http.StatusOK || d.Function != querytest.Hostile || d.Namespace != querytest.HostileNamespace || d.ErrorCode != querytest.HostileErrorCode {
		t.Errorf("hostile event: %d %+v", a.status, d.Event)
	}
	if a := e.get(t, tokB, "/v1/events/"+url.PathEscape(querytest.HostileRequestID), nil); a.status != http.StatusNotFound {
		t.Errorf("tenant B got A's hostile event: %d", a.status)
	}
	from, to := strconv.FormatInt(e.fx.Base.Add(-time.Hour).UnixMilli(), 10), strconv.FormatInt(e.fx.Now.Add(time.Hour).UnixMilli(), 10)
	for k, v := range map[string]string{"function": querytest.Hostile, "namespace": querytest.HostileNamespace, "qualifier": querytest.HostileQualifier} {
		a := e.get(t, tokA, "/v1/stats", url.Values{k: {v}, "from": {from}, "to": {to}})
		var s queries.Stats
		a.decode(t, &s)
		if a.status != http.StatusOK || s.ByStatus["FAILED"] != 1 || s.Accepted != 1 {
			t.Errorf("stats %s=%q: %d %s", k, v, a.status, a.body)
		}
	}
}

func window(e *env) url.Values {
	return url.Values{
		"from": {strconv.FormatInt(e.fx.Base.Add(-time.Hour).UnixMilli(), 10)},
		"to":   {strconv.FormatInt(e.fx.Now.Add(time.Hour).UnixMilli(), 10)},
	}
}

func testStats(t *testing.T, e *env) {
	q := window(e)
	q.Set("durations", "true")
	a := e.get(t, tokA, "/v1/stats", q)
	var s queries.Stats
	a.decode(t, &s)
	if a.status != http.StatusOK || s.Accepted != 6 || s.ByStatus["FAILED"] != 3 || s.FailureRate != 0.6 || s.Durations == nil ||
		s.Durations.QueueWait.P50 < 9900*time.Millisecond || s.Durations.QueueWait.P50 > 10100*time.Millisecond || s.StepSeconds != 60 {
		t.Errorf("stats: %d %s", a.status, a.body)
	}
	// Nothing of the fixture waits now: an empty backlog, not a missing one.
	if s.Backlog == nil || len(s.Backlog) != 0 {
		t.Errorf("stats backlog: %s", a.body)
	}
	q = window(e)
	q.Set("function", "resize")
	q.Set("step", "60")
	a = e.get(t, tokB, "/v1/stats", q)
	s = queries.Stats{}
	a.decode(t, &s)
	if a.status != http.StatusOK || s.Accepted != 2 || s.StepSeconds != 60 || s.Durations != nil {
		t.Errorf("tenant B stats: %s", a.body)
	}
}

func ndjsonLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("line %s: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func testExport(t *testing.T, e *env) {
	a := e.get(t, tokA, "/v1/export", window(e))
	lines := ndjsonLines(t, a.body)
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/x-ndjson" || a.header.Get("X-Total-Count") != "6" || len(lines) != 6 {
		t.Fatalf("export events: %d %v %d lines", a.status, a.header, len(lines))
	}
	for i, l := range lines {
		if l["tenant"] != querytest.TenantA || l["request_id"] != querytest.VisibleA[i] {
			t.Errorf("line %d: %v", i, l)
		}
	}
	q := window(e)
	q.Set("kind", "transitions")
	a = e.get(t, tokA, "/v1/export", q)
	if lines := ndjsonLines(t, a.body); a.status != http.StatusOK || a.header.Get("X-Total-Count") != "19" || len(lines) != 19 {
		t.Errorf("export transitions: %d %s lines %d", a.status, a.header.Get("X-Total-Count"), len(lines))
	}
	q = window(e)
	q.Set("status", "FAILED")
	q.Set("function", querytest.Hostile)
	a = e.get(t, tokA, "/v1/export", q)
	if lines := ndjsonLines(t, a.body); len(lines) != 1 || lines[0]["request_id"] != querytest.HostileRequestID {
		t.Errorf("filtered export: %s", a.body)
	}
	a = e.get(t, tokB, "/v1/export", window(e))
	if lines := ndjsonLines(t, a.body); len(lines) != 2 {
		t.Errorf("tenant B export: %d lines", len(lines))
	}
}

type actionAnswer struct {
	Response struct {
		Error *struct {
			Code, Message string
		}
		RequestId  string
		TotalCount uint64
		EventList  []api.AsyncEvent
		NextCursor string
		Result     *api.AsyncEventStatus
	}
}

func (e *env) action(t *testing.T, token, action string, body any) (int, actionAnswer, []byte) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/action", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if action != "" {
		req.Header.Set("X-Action", action)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	a := do(t, req)
	var aa actionAnswer
	a.decode(t, &aa)
	if aa.Response.RequestId == "" || aa.Response.RequestId != a.header.Get("X-Request-Id") {
		t.Errorf("RequestId %q, header %q", aa.Response.RequestId, a.header.Get("X-Request-Id"))
	}
	return a.status, aa, a.body
}

func testAction(t *testing.T, e *env) {
	base := e.fx.Base
	status, aa, body := e.action(t, tokA, "ListAsyncEvents", map[string]any{"FunctionName": "resize", "Order": "ASC"})
	if status != http.StatusOK || aa.Response.TotalCount != 4 || len(aa.Response.EventList) != 4 {
		t.Fatalf("ListAsyncEvents: %d %s", status, body)
	}
	first := aa.Response.EventList[0]
	if first.InvokeRequestId != querytest.FinishedID || first.Status != "FINISHED" || first.InvokeType != "async" || first.Qualifier != "LATEST" ||
		first.StartTime != base.Format("2006-01-02 15:04:05.000") || first.StartTimeMs != base.UnixMilli() || first.EndTimeMs != base.Add(30*time.Second).UnixMilli() {
		t.Errorf("first event: %+v", first)
	}
	status, aa, body = e.action(t, tokA, "ListAsyncEvents", map[string]any{
		"FunctionName": "resize", "Namespace": "default", "Status": []string{"FAILED"}, "InvokeType": "async",
		"StartTimeInterval": map[string]any{"Start": base.UnixMilli(), "End": strconv.FormatInt(base.Add(time.Hour).UnixMilli(), 10)},
		"Orderby":           "EndTime", "Order": "DESC", "Offset": 0, "Limit": 10,
	})
	if status != http.StatusOK || aa.Response.TotalCount != 1 || aa.Response.EventList[0].InvokeRequestId != querytest.ExpiredID {
		t.Errorf("filtered ListAsyncEvents: %d %s", status, body)
	}
	status, aa, body = e.action(t, tokA, "ListAsyncEvents", map[string]any{"FunctionName": "resize", "InvokeRequestId": querytest.FailedID})
	if status != http.StatusOK || aa.Response.TotalCount != 1 || aa.Response.EventList[0].Status != "FAILED" || aa.Response.EventList[0].InvokeType != "timer" {
		t.Errorf("by InvokeRequestId: %s", body)
	}
	// Hostile function names in the body; the namespace defaults to "default".
	status, aa, _ = e.action(t, tokA, "ListAsyncEvents", map[string]any{"FunctionName": querytest.Hostile, "Namespace": querytest.HostileNamespace})
	if status != http.StatusOK || aa.Response.TotalCount != 1 {
		t.Errorf("hostile function: %d %+v", status, aa.Response)
	}
	status, aa, _ = e.action(t, tokA, "ListAsyncEvents", map[string]any{"FunctionName": querytest.Hostile})
	if status != http.StatusOK || aa.Response.TotalCount != 0 {
		t.Errorf("hostile function in namespace default: %d %+v", status, aa.Response)
	}

	status, aa, body = e.action(t, tokA, "GetAsyncEventStatus", map[string]any{"InvokeRequestId": querytest.FailedID})
	if status != http.StatusOK || aa.Response.Result == nil || aa.Response.Result.Status != "FAILED" || aa.Response.Result.StatusCode != 500 ||
		aa.Response.Result.InvokeRequestId != querytest.FailedID || aa.Response.Result.ErrorCode != "HandlerError" {
		t.Errorf("GetAsyncEventStatus: %d %s", status, body)
	}
	status, aa, _ = e.action(t, tokA, "GetAsyncEventStatus", map[string]any{"InvokeRequestId": querytest.RunningID})
	if status != http.StatusOK || aa.Response.Result.Status != "RUNNING" || aa.Response.Result.StatusCode != 0 || aa.Response.Result.EndTime != "" {
		t.Errorf("running: %+v", aa.Response.Result)
	}
	// Another tenant's event and a missing one: the same 404.
	s1, a1, _ := e.action(t, tokB, "GetAsyncEventStatus", map[string]any{"InvokeRequestId": querytest.FailedID})
	s2, a2, _ := e.action(t, tokB, "GetAsyncEventStatus", map[string]any{"InvokeRequestId": "no-such-event"})
	if s1 != http.StatusNotFound || s2 != s1 || a1.Response.Error == nil || a2.Response.Error == nil || *a1.Response.Error != *a2.Response.Error ||
		a1.Response.Error.Code != "ResourceNotFound.AsyncEvent" {
		t.Errorf("another tenant's event: %d %+v; missing: %d %+v", s1, a1.Response.Error, s2, a2.Response.Error)
	}

	// The action may come from the body or X-TC-Action too.
	status, aa, _ = e.action(t, tokA, "", map[string]any{"Action": "GetAsyncEventStatus", "InvokeRequestId": querytest.FinishedID, "Version": "2018-04-16"})
	if status != http.StatusOK || aa.Response.Result.StatusCode != 200 {
		t.Errorf("Action in the body: %d %+v", status, aa.Response)
	}

	for _, c := range []struct {
		action string
		body   any
		status int
		code   string
	}{
		{"ListAsyncEvents", map[string]any{"FunctionName": "resize", "Limit": 101}, 400, "InvalidParameterValue"},
		{"ListAsyncEvents", map[string]any{"FunctionName": "resize", "Limit": 0}, 400, "InvalidParameterValue"},
		{"ListAsyncEvents", map[string]any{"FunctionName": "resize", "Offset": -1}, 400, "InvalidParameterValue"},
		{"ListAsyncEvents", map[string]any{"FunctionName": "resize", "Status": []string{"DONE"}}, 400, "InvalidParameterValue"},
		{"ListAsyncEvents", map[string]any{"FunctionName": "resize", "Order": "UP"}, 400, "InvalidParameterValue"},
		{"ListAsyncEvents", map[string]any{"FunctionName": "resize", "Orderby": "RequestId"}, 400, "InvalidParameterValue"},
		{"ListAsyncEvents", map[string]any{"FunctionName": "resize", "StartTimeInterval": map[string]any{"Start": 1700000000000, "End": 1600000000000}}, 400, "InvalidParameterValue"},
		{"ListAsyncEvents", map[string]any{"FunctionName": "resize", "EndTimeInterval": map[string]any{"Start": "yesterday"}}, 400, "InvalidParameterValue"},
		{"ListAsyncEvents", map[string]any{"FunctionName": querytest.Big}, 400, "InvalidParameterValue"},
		{"ListAsyncEvents", map[string]any{"FunctionName": "resize", "Bogus": 1}, 400, "InvalidParameterValue"},
		{"ListAsyncEvents", map[string]any{"Namespace": "default"}, 400, "MissingParameter"},
		{"ListAsyncEvents", `{"FunctionName": "resize"`, 400, "InvalidParameterValue"},
		{"GetAsyncEventStatus", map[string]any{}, 400, "MissingParameter"},
		{"GetAsyncEventStatus", map[string]any{"InvokeRequestId": querytest.Big}, 400, "InvalidParameterValue"},
		{"DeleteFunction", map[string]any{}, 400, "InvalidAction"},
		{"", map[string]any{}, 400, "MissingParameter"},
	} {
		status, aa, body := e.action(t, tokA, c.action, c.body)
		if status != c.status || aa.Response.Error == nil || aa.Response.Error.Code != c.code || aa.Response.Error.Message == "" {
			t.Errorf("%s %v: %d %s, want %d %s", c.action, c.body, status, body, c.status, c.code)
		}
	}
	status, aa, _ = e.action(t, "", "ListAsyncEvents", map[string]any{"FunctionName": "resize"})
	if status != http.StatusUnauthorized || aa.Response.Error.Code != "AuthFailure" {
		t.Errorf("no token: %d %+v", status, aa.Response.Error)
	}
	status, aa, _ = e.action(t, tokA, "ListAsyncEvents", `{"FunctionName": "`+strings.Repeat("x", 2<<20)+`"}`)
	if status != http.StatusRequestEntityTooLarge || aa.Response.Error.Code != "RequestSizeLimitExceeded" {
		t.Errorf("2 MB body: %d %+v", status, aa.Response.Error)
	}
}

// Whatever the server answers, an API error is one readable line.
func TestAPIErrorOneLine(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html>\n<body>\n  <h1>502 Bad Gateway</h1>\n"+strings.Repeat("upstream trouble ", 100)+"\n</body></html>\n")
	}))
	defer srv.Close()
	_, err := (&api.Client{BaseURL: srv.URL, Token: tokA}).Get(context.Background(), "x")
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || ae.BadRequest() {
		t.Fatalf("err %v", err)
	}
	if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || len(msg) > 400 || !strings.HasPrefix(msg, "Bad Gateway (HTTP 502): <html> <body> <h1>502 Bad Gateway</h1> upstream") {
		t.Errorf("error %q", msg)
	}
}

func testClient(t *testing.T, e *env) {
	ctx := context.Background()
	c := &api.Client{BaseURL: e.srv.URL, Token: tokA}
	p, err := c.List(ctx, queries.ListFilter{Statuses: []string{"FAILED"}, Desc: false, Limit: 2})
	if err != nil || p.Total != 3 || !slices.Equal(reqIDs(p.Events), []string{querytest.FailedID, querytest.ExpiredID}) || p.NextCursor == "" {
		t.Fatalf("client list: %+v %v", p, err)
	}
	p, err = c.List(ctx, queries.ListFilter{Statuses: []string{"FAILED"}, Desc: false, Limit: 2, Cursor: p.NextCursor})
	if err != nil || !slices.Equal(reqIDs(p.Events), []string{querytest.HostileRequestID}) {
		t.Errorf("client list page 2: %+v %v", p, err)
	}
	d, err := c.Get(ctx, querytest.HostileRequestID)
	if err != nil || d.Function != querytest.Hostile {
		t.Errorf("client get hostile: %+v %v", d, err)
	}
	_, err = c.Get(ctx, querytest.BOnlyID)
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Errorf("client get of tenant B's: %v", err)
	}
	w := queries.TimeRange{From: e.fx.Base.Add(-time.Hour), To: e.fx.Now.Add(time.Hour)}
	s, err := c.Stats(ctx, queries.StatsQuery{Function: "resize", Window: w, Step: time.Hour}, true)
	if err != nil || s.Accepted != 4 || s.Durations == nil {
		t.Errorf("client stats: %+v %v", s, err)
	}
	var buf bytes.Buffer
	var total, lines uint64
	err = c.Export(ctx, api.ExportRequest{Kind: api.KindTransitions, Window: queries.WindowFilter{Function: "resize", Window: w}}, &buf,
		func(n uint64) { total = n }, func() { lines++ })
	// resize: finished 3, failed 5, running 2, expired 2.
	if err != nil || total != 12 || lines != 12 || bytes.Count(buf.Bytes(), []byte("\n")) != 12 {
		t.Errorf("client export: total %d lines %d err %v", total, lines, err)
	}
}
