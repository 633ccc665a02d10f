package console_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/testkit/querytest"
)

func apiCall(t *testing.T, e *env, token, method, path, body string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestAPIActions: GET /v1/functions, the REST actions and the SCF-shaped
// TerminateAsyncEvent, each in the caller's scope, through the scheduler's
// real (token-checking) API.
func TestAPIActions(t *testing.T) {
	e := newEnv(t)
	from := e.fx.Base.Add(-60e9).UTC().Format("2006-01-02T15:04:05Z")
	to := e.fx.Now.Add(3600e9).UTC().Format("2006-01-02T15:04:05Z")

	code, body := apiCall(t, e, tokA, http.MethodGet, "/v1/functions?from="+from+"&to="+to, "", nil)
	var fns api.Functions
	b, _ := json.Marshal(body)
	if err := json.Unmarshal(b, &fns); err != nil || code != http.StatusOK || len(fns.Functions) == 0 {
		t.Fatalf("functions: %d %v %v", code, body, err)
	}
	for _, f := range fns.Functions {
		if f.Namespace == "default" && f.Function == "resize" && (f.Accepted == 0 || f.ByStatus["FAILED"] == 0) {
			t.Errorf("resize: %+v", f)
		}
	}
	if code, body := apiCall(t, e, tokA, http.MethodGet, "/v1/functions?from="+to+"&to="+from, "", nil); code != http.StatusBadRequest {
		t.Errorf("inverted window: %d %v", code, body)
	}
	code, body = apiCall(t, e, tokB, http.MethodGet, "/v1/functions?from="+from+"&to="+to, "", nil)
	if fl, _ := body["functions"].([]any); code != http.StatusOK || len(fl) != 1 {
		t.Errorf("tenant B functions: %d %v", code, body)
	}

	// REST terminate: graceful by default; another tenant's event is 404
	// and never reaches the scheduler.
	if code, body := apiCall(t, e, tokA, http.MethodPost, "/v1/events/"+querytest.RunningID+"/terminate", "", nil); code != http.StatusAccepted || body["mode"] != "graceful" {
		t.Errorf("terminate: %d %v", code, body)
	}
	if code, _ := apiCall(t, e, tokA, http.MethodPost, "/v1/events/"+querytest.BOnlyID+"/terminate", "", nil); code != http.StatusNotFound {
		t.Errorf("terminate B's event as A: %d", code)
	}
	if code, _ := apiCall(t, e, tokB, http.MethodPost, "/v1/events/"+querytest.BOnlyID+"/terminate", "", nil); code != http.StatusNotFound {
		t.Errorf("terminate as B (not the scheduler's tenant): %d", code)
	}
	if code, _ := apiCall(t, e, tokA, http.MethodPost, "/v1/events/"+querytest.RunningID+"/terminate?mode=later", "", nil); code != http.StatusBadRequest {
		t.Errorf("bad mode: %d", code)
	}
	if n := len(e.sched.calls()); n != 1 {
		t.Fatalf("scheduler calls: %d, want 1", n)
	}

	// Status trace switch.
	if code, body := apiCall(t, e, tokA, http.MethodPut, "/v1/functions/default/resize/status-trace", `{"enabled": false}`, nil); code != http.StatusOK || body["enabled"] != false {
		t.Errorf("tracing off: %d %v", code, body)
	}
	if code, body := apiCall(t, e, tokA, http.MethodPut, "/v1/functions/default/resize/status-trace", `{"on": 1}`, nil); code != http.StatusBadRequest {
		t.Errorf("bad body: %d %v", code, body)
	}
	if code, _ := apiCall(t, e, tokB, http.MethodDelete, "/v1/functions/default/resize/status-trace", "", nil); code != http.StatusNotFound {
		t.Errorf("tracing as B: %d", code)
	}

	// TerminateAsyncEvent: the function must match the event; GraceShutdown
	// picks the mode.
	act := map[string]string{"X-Action": "TerminateAsyncEvent"}
	code, body = apiCall(t, e, tokA, http.MethodPost, "/v1/action", `{"FunctionName": "thumbnail", "InvokeRequestId": "`+querytest.RunningID+`"}`, act)
	if code != http.StatusNotFound {
		t.Errorf("wrong function: %d %v", code, body)
	}
	code, body = apiCall(t, e, tokA, http.MethodPost, "/v1/action", `{"InvokeRequestId": "`+querytest.RunningID+`"}`, act)
	if resp, _ := body["Response"].(map[string]any); code != http.StatusBadRequest || resp["Error"].(map[string]any)["Code"] != "MissingParameter" {
		t.Errorf("no FunctionName: %d %v", code, body)
	}
	code, body = apiCall(t, e, tokA, http.MethodPost, "/v1/action", `{"FunctionName": "resize", "InvokeRequestId": "`+querytest.RunningID+`", "GraceShutdown": true}`, act)
	if resp, _ := body["Response"].(map[string]any); code != http.StatusOK || resp["State"] != "TERMINATING" || resp["RequestId"] == "" {
		t.Errorf("TerminateAsyncEvent: %d %v", code, body)
	}
	c := e.sched.calls()
	if len(c) != 2 || c[1].RequestID != querytest.RunningID || c[1].Mode != "graceful" {
		t.Errorf("scheduler calls: %+v", c)
	}
}
