package scheduler_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/scheduler"
)

const callerTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// Every kind of outcome yields exactly its transitions, with the event's
// keys, node and the caller's traceparent on each.
func TestOutcomes(t *testing.T) {
	d, demoURL := demo(t)
	rec := &recorder{}
	n := startNode(t, testConfig(t, demoURL), rec, nil)

	cases := []struct {
		fn   string
		want []step
	}{
		{"succeed", lifeSuccess},
		{"fail", lifeFailed},
		{"flaky", lifeFlaky},
		{"expire", lifeExpired},
	}
	ids := map[string]string{}
	for _, c := range cases {
		r := n.invoke(t, "demo", c.fn, "", callerTraceParent)
		require.Equal(t, http.StatusAccepted, r.Status, r.Body)
		require.NotEmpty(t, r.RequestID)
		ids[c.fn] = r.RequestID
	}
	for _, c := range cases {
		t.Run(c.fn, func(t *testing.T) {
			rid := ids[c.fn]
			assert.Equal(t, c.want, waitSteps(t, rec.Of, rid))
			for _, tr := range rec.Of(rid) {
				assert.Equal(t, event.Keys{Tenant: "acme", Namespace: "demo", Function: c.fn, Qualifier: "$LATEST", RequestID: rid}, tr.Keys)
				assert.Equal(t, "test-node", tr.Node)
				assert.Equal(t, "async", tr.InvokeType)
				assert.Equal(t, callerTraceParent, tr.TraceParent)
			}
		})
	}

	assert.Equal(t, 1, d.Calls(ids["succeed"]))
	assert.Equal(t, 3, d.Calls(ids["fail"]), "retries: 2 means three attempts")
	assert.Equal(t, 2, d.Calls(ids["flaky"]))
	fail := rec.Of(ids["fail"])
	assert.Equal(t, scheduler.CodeFunctionError, fail[len(fail)-1].ErrorCode)
	assert.Contains(t, fail[len(fail)-1].ErrorMessage, "HTTP 500")
	exp := rec.Of(ids["expire"])
	assert.Equal(t, "MaxEventAgeExceeded", exp[len(exp)-1].ErrorCode)

	n.waitState(t, ids["succeed"], "FINISHED")
	n.waitState(t, ids["fail"], "FAILED")
	n.waitState(t, ids["expire"], "EXPIRED")
}

func TestGracefulTerminate(t *testing.T) {
	d, demoURL := demo(t)
	rec := &recorder{}
	n := startNode(t, testConfig(t, demoURL), rec, nil)

	r := n.invoke(t, "demo", "long", "grace-1", "")
	require.Equal(t, http.StatusAccepted, r.Status, r.Body)
	require.Eventually(t, func() bool { return d.Running() == 1 }, 10*time.Second, 5*time.Millisecond)

	code, body := n.do(t, http.MethodPost, "/v1/events/grace-1/terminate?mode=graceful", "")
	require.Equal(t, http.StatusAccepted, code, body)
	assert.Equal(t, "TERMINATING", body["state"])

	// The function got the notice and wound down well within the 30s grace.
	assert.Equal(t, lifeGraceful, waitSteps(t, rec.Of, "grace-1"))
	n.waitState(t, "grace-1", "ABORTED")
	assert.Equal(t, 1, d.Calls("grace-1"))

	code, body = n.do(t, http.MethodPost, "/v1/events/grace-1/terminate", "")
	assert.Equal(t, http.StatusConflict, code, "an ended event cannot be terminated: %v", body)
}

func TestGracefulTerminateEndsAfterGracePeriod(t *testing.T) {
	d, demoURL := demo(t)
	rec := &recorder{}
	n := startNode(t, testConfig(t, demoURL), rec, nil)

	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "deaf", "deaf-1", "").Status)
	require.Eventually(t, func() bool { return d.Running() == 1 }, 10*time.Second, 5*time.Millisecond)
	code, _ := n.do(t, http.MethodPost, "/v1/events/deaf-1/terminate", "") // graceful by default
	require.Equal(t, http.StatusAccepted, code)
	// "deaf" has no terminate endpoint: the call is cut after its 200ms grace.
	assert.Equal(t, lifeGraceful, waitSteps(t, rec.Of, "deaf-1"))
	require.Eventually(t, func() bool { return d.Running() == 0 }, 10*time.Second, 5*time.Millisecond)
}

func TestImmediateTerminate(t *testing.T) {
	d, demoURL := demo(t)
	rec := &recorder{}
	n := startNode(t, testConfig(t, demoURL), rec, nil)

	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "long", "now-1", "").Status)
	require.Eventually(t, func() bool { return d.Running() == 1 }, 10*time.Second, 5*time.Millisecond)
	code, body := n.do(t, http.MethodPost, "/v1/events/now-1/terminate?mode=immediate", "")
	require.Equal(t, http.StatusAccepted, code, body)
	assert.Equal(t, lifeImmediate, waitSteps(t, rec.Of, "now-1"))
	n.waitState(t, "now-1", "ABORTED")
	require.Eventually(t, func() bool { return d.Running() == 0 }, 10*time.Second, 5*time.Millisecond, "the call was cut")
}

func TestTerminateWhileWaitingForRetry(t *testing.T) {
	_, demoURL := demo(t)
	rec := &recorder{}
	n := startNode(t, testConfig(t, demoURL), rec, nil)

	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "patient", "wait-1", "").Status)
	n.waitState(t, "wait-1", "RETRYING") // the next attempt is an hour away
	code, body := n.do(t, http.MethodPost, "/v1/events/wait-1/terminate?mode=graceful", "")
	require.Equal(t, http.StatusAccepted, code, body)
	assert.Equal(t, "ABORTED", body["state"])
	assert.Equal(t, lifeAbortedWaiting, waitSteps(t, rec.Of, "wait-1"))
	n.waitState(t, "wait-1", "ABORTED")
}

func TestQPSRejectionMakesNoEvent(t *testing.T) {
	_, demoURL := demo(t)
	rec := &recorder{}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	n := startNode(t, testConfig(t, demoURL), rec, mp)

	first := n.invoke(t, "demo", "limited", "qps-1", "")
	require.Equal(t, http.StatusAccepted, first.Status, first.Body)
	second := n.invoke(t, "demo", "limited", "qps-2", "")
	require.Equal(t, http.StatusTooManyRequests, second.Status, second.Body)

	assert.Equal(t, lifeSuccess, waitSteps(t, rec.Of, "qps-1"))
	assert.Empty(t, rec.Of("qps-2"), "a rejected request has no transitions")
	code, _ := n.do(t, http.MethodGet, "/v1/events/qps-2", "")
	assert.Equal(t, http.StatusNotFound, code, "and no event")

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	assert.Equal(t, int64(1), counterValue(rm, scheduler.MetricRejected))
	assert.Equal(t, int64(1), counterValue(rm, scheduler.MetricAccepted))
}

func counterValue(rm metricdata.ResourceMetrics, name string) int64 {
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range sum.DataPoints {
					total += dp.Value
				}
			}
		}
	}
	return total
}

func TestStatusTraceSwitch(t *testing.T) {
	d, demoURL := demo(t)
	rec := &recorder{}
	cfg := testConfig(t, demoURL)
	n := startNode(t, cfg, rec, nil)

	code, body := n.do(t, http.MethodPut, "/v1/namespaces/demo/functions/succeed/status-trace", `{"enabled": false}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, false, body["enabled"])
	assert.Equal(t, "override", body["source"])
	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "succeed", "off-1", "").Status)
	n.waitState(t, "off-1", "FINISHED")
	assert.Equal(t, 1, d.Calls("off-1"), "the event runs")
	assert.Empty(t, rec.Of("off-1"), "but nothing is recorded")

	code, body = n.do(t, http.MethodGet, "/v1/namespaces/demo/functions/succeed/status-trace", "")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, false, body["enabled"])

	// The switch is shared through the database: a second node on the same
	// database sees it.
	n2 := startNode(t, cfg, &recorder{}, nil)
	_, body = n2.do(t, http.MethodGet, "/v1/namespaces/demo/functions/succeed/status-trace", "")
	assert.Equal(t, false, body["enabled"])
	assert.Equal(t, "override", body["source"], "the other node knows it is an override")
	n2.stop(t) // so that it works none of the jobs below

	code, body = n.do(t, http.MethodDelete, "/v1/namespaces/demo/functions/succeed/status-trace", "")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, true, body["enabled"], "back to the config file")
	assert.Equal(t, "config", body["source"])
	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "succeed", "on-1", "").Status)
	assert.Equal(t, lifeSuccess, waitSteps(t, rec.Of, "on-1"))

	code, _ = n.do(t, http.MethodPut, "/v1/namespaces/demo/functions/nope/status-trace", `{"enabled": true}`)
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = n.do(t, http.MethodPut, "/v1/namespaces/demo/functions/succeed/status-trace", `{"enabled": "yes"}`)
	assert.Equal(t, http.StatusBadRequest, code)
}

func TestBadRequests(t *testing.T) {
	_, demoURL := demo(t)
	rec := &recorder{}
	cfg := testConfig(t, demoURL)
	cfg.MaxPayloadBytes = 8
	n := startNode(t, cfg, rec, nil)

	code, _ := n.do(t, http.MethodPost, "/v1/namespaces/demo/functions/nope/invocations", "")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, http.StatusBadRequest, n.invoke(t, "demo", "succeed", "bad id with spaces", "").Status)
	assert.Equal(t, http.StatusRequestEntityTooLarge, n.invoke(t, "demo", "succeed", "big-1", "").Status, "the test payload is 17 bytes")
	code, _ = n.do(t, http.MethodPost, "/v1/events/x/terminate?mode=sideways", "")
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = n.do(t, http.MethodPost, "/v1/events/x/terminate?grace=-1s", "")
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = n.do(t, http.MethodPost, "/v1/events/unknown/terminate", "")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Zero(t, rec.Count(), "no bad request made an event")
}

func TestRequestIDIsUniqueAndCallerTraceParentIsHonoured(t *testing.T) {
	_, demoURL := demo(t)
	rec := &recorder{}
	cfg := testConfig(t, demoURL)
	cfg.MaxPayloadBytes = 1 << 20
	n := startNode(t, cfg, rec, nil)

	r := n.invoke(t, "demo", "succeed", "mine-1", callerTraceParent)
	require.Equal(t, http.StatusAccepted, r.Status)
	assert.Equal(t, "mine-1", r.RequestID)
	assert.Equal(t, http.StatusConflict, n.invoke(t, "demo", "succeed", "mine-1", "").Status)
	req, err := http.NewRequest(http.MethodPost, n.url+"/v1/namespaces/demo/functions/succeed/invocations", strings.NewReader("another payload"))
	require.NoError(t, err)
	req.Header.Set("X-Request-Id", "mine-1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "the request ID alone decides, not the payload")
	waitSteps(t, rec.Of, "mine-1")
	assert.Equal(t, http.StatusConflict, n.invoke(t, "demo", "succeed", "mine-1", "").Status, "also after it ended")
	assert.Len(t, rec.Of("mine-1"), 3)

	// No (or an invalid) traceparent: the event starts a trace of its own.
	r1 := n.invoke(t, "demo", "succeed", "", "")
	r2 := n.invoke(t, "demo", "succeed", "", "00-zzz-invalid")
	require.NotEqual(t, r1.RequestID, r2.RequestID)
	for _, rid := range []string{r1.RequestID, r2.RequestID} {
		ts := waitSteps(t, rec.Of, rid)
		require.NotEmpty(t, ts)
		tp := rec.Of(rid)[0].TraceParent
		assert.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`, tp)
		assert.NotContains(t, tp, "4bf92f3577b34da6a3ce929d0e0e4736")
	}
}

// A node stopping mid-call puts the event back without spending an attempt:
// another node runs it again as the same attempt (RUNNING is reported again
// with the same seq, which storage keeps once) and the event ends normally.
func TestNodeStopHandsTheEventOver(t *testing.T) {
	d, demoURL := demo(t)
	rec := &recorder{}
	cfg := testConfig(t, demoURL)
	a := startNode(t, cfg, rec, nil)

	require.Equal(t, http.StatusAccepted, a.invoke(t, "demo", "slowish", "handover-1", "").Status)
	require.Eventually(t, func() bool { return d.Calls("handover-1") == 1 }, 10*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.NoError(t, a.s.Stop(ctx)) // the call is cut

	cfgB := *cfg
	cfgB.Node = "test-node-b"
	startNode(t, &cfgB, rec, nil)
	ts := waitSteps(t, rec.Of, "handover-1")
	assert.Equal(t, 2, d.Calls("handover-1"), "cut once, run once more: %+v", rec.Of("handover-1"))
	bySeq := map[uint64]step{}
	for _, s := range ts {
		bySeq[s.Seq] = s
	}
	assert.Equal(t, map[uint64]step{1: lifeSuccess[0], 5: lifeSuccess[1], 7: lifeSuccess[2]}, bySeq)
	last := rec.Of("handover-1")
	assert.Equal(t, "test-node-b", last[len(last)-1].Node)
}
