package scheduler_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/statustrace/statustrace/scheduler"
	"github.com/statustrace/statustrace/scheduler/config"
	"github.com/statustrace/statustrace/testkit/pgtest"
)

// rejectedBy sums the rejection counter for one reason.
func rejectedBy(t *testing.T, reader *sdkmetric.ManualReader, reason string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != scheduler.MetricRejected {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if v, ok := dp.Attributes.Value("reason"); ok && v.AsString() == reason {
					total += dp.Value
				}
			}
		}
	}
	return total
}

// An account put in arrears (then suspended) at run time through the API:
// its invocations are refused at once with 402 (403), the real plugin gets no
// span for them, the scheduler has no event, the counter counts them by
// reason, and the event accepted before runs to its end.
func TestAccountStandingRefusesWithPlugin(t *testing.T) {
	d, demoURL := demo(t)
	rx := startReceiver(t)
	rep := startReporter(t, rx, 20*time.Millisecond)
	reader := sdkmetric.NewManualReader()
	n := startNode(t, testConfig(t, demoURL), rep, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))

	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "slowish", "before-arrears", "").Status)
	require.Eventually(t, func() bool { return len(rx.steps("before-arrears")) >= 2 }, 10*time.Second, 5*time.Millisecond, "never RUNNING")

	code, body := n.do(t, http.MethodPut, "/v1/account/standing", `{"standing":"arrears"}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "arrears", body["standing"])
	assert.Equal(t, "acme", body["tenant"])

	r := n.invoke(t, "demo", "succeed", "in-arrears", "")
	require.Equal(t, http.StatusPaymentRequired, r.Status, r.Body)
	assert.Contains(t, r.Body, `"account_in_arrears"`)

	// The namespace suspended on top of the tenant's arrears: the worse wins.
	code, body = n.do(t, http.MethodPut, "/v1/namespaces/demo/standing", `{"standing":"suspended"}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "suspended", body["standing"])
	r = n.invoke(t, "demo", "succeed", "suspended-1", "")
	require.Equal(t, http.StatusForbidden, r.Status, r.Body)
	assert.Contains(t, r.Body, `"account_suspended"`)

	// The event accepted before runs to its end.
	rx.waitLife(t, "before-arrears", lifeSuccess)
	for _, rid := range []string{"in-arrears", "suspended-1"} {
		assert.Empty(t, rx.spans(rid), "a refused request is no event")
		_, hasRoot := rx.root(rid)
		assert.False(t, hasRoot)
		code, _ := n.do(t, http.MethodGet, "/v1/events/"+rid, "")
		assert.Equal(t, http.StatusNotFound, code, "nothing enqueued for %s", rid)
		assert.Zero(t, d.Calls(rid))
	}
	assert.Equal(t, int64(1), rejectedBy(t, reader, "arrears"))
	assert.Equal(t, int64(1), rejectedBy(t, reader, "suspended"))
	assert.Zero(t, rejectedBy(t, reader, "qps_limit"))

	// Back to the config file: invocations are accepted again.
	for _, p := range []string{"/v1/account/standing", "/v1/namespaces/demo/standing"} {
		code, body = n.do(t, http.MethodDelete, p, "")
		require.Equal(t, http.StatusOK, code, body)
	}
	assert.Equal(t, "good", body["standing"])
	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "succeed", "after-arrears", "").Status)
	rx.waitLife(t, "after-arrears", lifeSuccess)

	// Bad input: a clear 400 or 404, nothing changed.
	code, _ = n.do(t, http.MethodPut, "/v1/account/standing", `{"standing":"broke"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = n.do(t, http.MethodPut, "/v1/namespaces/nope/standing", `{"standing":"arrears"}`)
	assert.Equal(t, http.StatusNotFound, code)
	code, body = n.do(t, http.MethodGet, "/v1/account/standing", "")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "good", body["standing"])
}

// A namespace in arrears in the config file is refused from the first
// request; other namespaces are not.
func TestAccountStandingFromConfig(t *testing.T) {
	_, demoURL := demo(t)
	cfg := testConfig(t, demoURL)
	cfg.Functions = append(cfg.Functions, config.Function{Name: "ok", Namespace: "paid", Endpoint: demoURL + "/succeed"})
	cfg.Account.Namespaces = map[string]config.Standing{"demo": config.StandingArrears}
	cfg.ApplyDefaults()
	rec := &recorder{}
	n := startNode(t, cfg, rec, nil)
	r := n.invoke(t, "demo", "succeed", "cfg-arrears", "")
	assert.Equal(t, http.StatusPaymentRequired, r.Status, r.Body)
	assert.Empty(t, rec.Of("cfg-arrears"))
	require.Equal(t, http.StatusAccepted, n.invoke(t, "paid", "ok", "cfg-paid", "").Status)
	assert.Equal(t, lifeSuccess, waitSteps(t, rec.Of, "cfg-paid"))
}

// The standing is shared: set through one node, the other refuses too.
func TestAccountStandingSharedAcrossNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	_, demoURL := demo(t)
	rec := &recorder{}
	cfgFor := func(name string) *config.Config {
		cfg := testConfig(t, demoURL)
		cfg.Node = name
		cfg.Database = config.Database{Driver: config.DriverPostgres, DSN: dsn}
		return cfg
	}
	a := startNode(t, cfgFor("node-a"), rec, nil)
	b := startNode(t, cfgFor("node-b"), rec, nil)
	require.Equal(t, http.StatusAccepted, b.invoke(t, "demo", "succeed", "shared-ok", "").Status)

	code, body := a.do(t, http.MethodPut, "/v1/account/standing", `{"standing":"arrears"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Eventually(t, func() bool {
		_, body := b.do(t, http.MethodGet, "/v1/account/standing", "")
		return body["standing"] == "arrears"
	}, 10*time.Second, 20*time.Millisecond, "node-b never saw the arrears")
	r := b.invoke(t, "demo", "succeed", "shared-refused", "")
	assert.Equal(t, http.StatusPaymentRequired, r.Status, r.Body)
	assert.Empty(t, rec.Of("shared-refused"))
	assert.Equal(t, lifeSuccess, waitSteps(t, rec.Of, "shared-ok"))
}
