package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/scheduler"
	"github.com/statustrace/statustrace/scheduler/config"
	"github.com/statustrace/statustrace/scheduler/demofuncs"
	"github.com/statustrace/statustrace/scheduler/riverstatus"
	"github.com/statustrace/statustrace/scheduler/riverstatus/riverstatustest"
)

type recorder = riverstatustest.Recorder

// step is a transition reduced to what a test pins down.
type step struct {
	From, To event.State
	Seq      uint64
	Attempt  uint32
}

func (s step) String() string {
	return fmt.Sprintf("%s->%s#%d/a%d", s.From, s.To, s.Seq, s.Attempt)
}

func steps(ts []event.Transition) []step {
	out := make([]step, len(ts))
	for i, t := range ts {
		out[i] = step{t.From, t.To, t.Seq, t.Attempt}
	}
	return out
}

const (
	N = event.StateNone
	Q = event.StateQueued
	R = event.StateRunning
	Y = event.StateRetrying
	T = event.StateTerminating
)

// The expected life of each kind of outcome.
var (
	lifeSuccess        = []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, event.StateFinished, 7, 1}}
	lifeFailed         = []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, Y, 7, 1}, {Y, R, 9, 2}, {R, Y, 11, 2}, {Y, R, 13, 3}, {R, event.StateFailed, 15, 3}}
	lifeFlaky          = []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, Y, 7, 1}, {Y, R, 9, 2}, {R, event.StateFinished, 11, 2}}
	lifeExpired        = []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, event.StateExpired, 7, 1}}
	lifeGraceful       = []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, T, 6, 1}, {T, event.StateAborted, 7, 1}}
	lifeImmediate      = []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, event.StateAborted, 7, 1}}
	lifeAbortedWaiting = []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, Y, 7, 1}, {Y, event.StateAborted, 8, 1}}
)

// demo serves the demo functions for a test.
func demo(t testing.TB) (*demofuncs.Server, string) {
	t.Helper()
	d := demofuncs.New()
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return d, srv.URL
}

func ms(n int) config.Duration { return config.Duration(time.Duration(n) * time.Millisecond) }

func intp(n int) *int { return &n }

// testConfig has one function per kind of outcome, with short timeouts and
// fast backoff.
func testConfig(t *testing.T, demoURL string) *config.Config {
	t.Helper()
	fast := config.Backoff{Initial: ms(10), Max: ms(50), Multiplier: 2}
	cfg := &config.Config{
		Node:          "test-node",
		Tenant:        "acme",
		Workers:       20,
		FetchPoll:     ms(50),
		FetchCooldown: ms(5),
		SettingsPoll:  ms(100),
		Database:      config.Database{Driver: config.DriverSQLite, DSN: filepath.Join(t.TempDir(), "sched.db")},
		Functions: []config.Function{
			{Name: "succeed", Namespace: "demo", Endpoint: demoURL + "/succeed", Retries: intp(2), Backoff: fast},
			{Name: "fail", Namespace: "demo", Endpoint: demoURL + "/fail", Retries: intp(2), Backoff: fast},
			{Name: "flaky", Namespace: "demo", Endpoint: demoURL + "/flaky?failures=1", Retries: intp(2), Backoff: fast},
			{Name: "expire", Namespace: "demo", Endpoint: demoURL + "/slow?delay=1h", Timeout: config.Duration(time.Minute), MaxEventAge: ms(400), Retries: intp(2), Backoff: fast},
			{Name: "long", Namespace: "demo", Endpoint: demoURL + "/until-terminated", TerminateEndpoint: demoURL + "/until-terminated/terminate",
				Timeout: config.Duration(time.Minute), TerminateGrace: config.Duration(30 * time.Second), Retries: intp(0)},
			{Name: "deaf", Namespace: "demo", Endpoint: demoURL + "/until-terminated",
				Timeout: config.Duration(time.Minute), TerminateGrace: ms(200), Retries: intp(0)},
			{Name: "patient", Namespace: "demo", Endpoint: demoURL + "/fail", Retries: intp(3), Backoff: config.Backoff{Initial: config.Duration(time.Hour), Max: config.Duration(time.Hour), Multiplier: 1}},
			{Name: "limited", Namespace: "demo", Endpoint: demoURL + "/succeed", QPS: 0.001, Burst: 1},
			{Name: "slowish", Namespace: "demo", Endpoint: demoURL + "/slow?delay=1500ms", Timeout: config.Duration(time.Minute), Retries: intp(0)},
		},
	}
	cfg.ApplyDefaults()
	require.NoError(t, cfg.Validate())
	return cfg
}

// node is a running scheduler with its API served.
type node struct {
	s   *scheduler.Scheduler
	url string
}

func startNode(t testing.TB, cfg *config.Config, rep riverstatus.Reporter, mp metric.MeterProvider) *node {
	t.Helper()
	ctx := context.Background()
	s, err := scheduler.New(ctx, scheduler.Options{
		Config:        cfg,
		Reporter:      rep,
		MeterProvider: mp,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	require.NoError(t, s.Start(ctx))
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return &node{s: s, url: srv.URL}
}

func (n *node) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, n.s.Stop(ctx))
}

type invokeResp struct {
	Status    int
	RequestID string
	Body      string
}

func (n *node) invoke(t *testing.T, ns, fn, requestID, traceparent string) invokeResp {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.url+"/v1/namespaces/"+ns+"/functions/"+fn+"/invocations", strings.NewReader(`{"hello":"world"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		RequestID string `json:"request_id"`
	}
	_ = json.Unmarshal(body, &out)
	return invokeResp{Status: resp.StatusCode, RequestID: out.RequestID, Body: string(body)}
}

func (n *node) do(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, n.url+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// eventState polls the scheduler's own view of an event.
func (n *node) eventState(t *testing.T, requestID string) string {
	t.Helper()
	code, body := n.do(t, http.MethodGet, "/v1/events/"+requestID, "")
	if code != http.StatusOK {
		return ""
	}
	s, _ := body["state"].(string)
	return s
}

func (n *node) waitState(t *testing.T, requestID, state string) {
	t.Helper()
	require.Eventually(t, func() bool { return n.eventState(t, requestID) == state }, 30*time.Second, 10*time.Millisecond,
		"event %s never reached %s (now %s)", requestID, state, n.eventState(t, requestID))
}

// waitSteps waits until the event's transitions end in a terminal state.
func waitSteps(t *testing.T, get func(string) []event.Transition, requestID string) []step {
	t.Helper()
	require.Eventually(t, func() bool {
		ts := get(requestID)
		return len(ts) > 0 && ts[len(ts)-1].To.Terminal()
	}, 30*time.Second, 10*time.Millisecond, "event %s never ended: %v", requestID, steps(get(requestID)))
	return steps(get(requestID))
}
