package scheduler_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/scheduler/config"
	"github.com/statustrace/statustrace/testkit/pgtest"
)

var (
	lifeExpiredQueued   = []step{{N, Q, 1, 0}, {Q, event.StateExpired, 4, 0}}
	lifeExpiredRetrying = []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, Y, 7, 1}, {Y, event.StateExpired, 8, 1}}
)

// expiryConfig: one worker per node, taken by a call that never ends, and
// functions whose events wait past their max age.
func expiryConfig(t *testing.T, demoURL string) *config.Config {
	cfg := testConfig(t, demoURL)
	cfg.Workers = 1
	cfg.ExpiryPoll = ms(100)
	cfg.Functions = append(cfg.Functions,
		config.Function{Name: "short-lived", Namespace: "demo", Endpoint: demoURL + "/succeed", MaxEventAge: ms(800)},
		config.Function{Name: "retry-late", Namespace: "demo", Endpoint: demoURL + "/fail", MaxEventAge: config.Duration(1500 * time.Millisecond),
			Retries: intp(3), Backoff: config.Backoff{Initial: config.Duration(time.Hour), Max: config.Duration(time.Hour), Multiplier: 1}},
	)
	cfg.ApplyDefaults()
	require.NoError(t, cfg.Validate())
	return cfg
}

// A backlog with no free worker: the one worker runs a call that does not
// end, and the events waiting behind it — one queued, one waiting for a
// retry — are EXPIRED through the real plugin while that call still runs,
// not when a worker frees up. Their transitions carry the next seq, their
// time is not before the deadline, and the scheduler shows them EXPIRED.
func TestExpiryOnTimeWithNoFreeWorker(t *testing.T) {
	d, demoURL := demo(t)
	rx := startReceiver(t)
	rep := startReporter(t, rx, 20*time.Millisecond)
	n := startNode(t, expiryConfig(t, demoURL), rep, nil)

	// First attempt fails at once, the retry is an hour away.
	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "retry-late", "exp-retry", "").Status)
	n.waitState(t, "exp-retry", event.StateRetrying.String())
	// The only worker is taken for good.
	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "long", "exp-busy", "").Status)
	require.Eventually(t, func() bool { return d.Running() == 1 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "short-lived", "exp-queued", "").Status)
	queuedAt := time.Now()

	rx.waitLife(t, "exp-queued", lifeExpiredQueued)
	rx.waitLife(t, "exp-retry", lifeExpiredRetrying)
	assert.Equal(t, 1, d.Running(), "the worker was never free")
	assert.Equal(t, event.StateRunning.String(), n.eventState(t, "exp-busy"))
	n.waitState(t, "exp-queued", event.StateExpired.String())
	n.waitState(t, "exp-retry", event.StateExpired.String())
	assert.Zero(t, d.Calls("exp-queued"), "an expired event is never called")
	assert.Equal(t, 1, d.Calls("exp-retry"), "the retry never ran")
	t.Logf("exp-queued EXPIRED %s after it was queued (max age 800ms)", time.Since(queuedAt).Round(time.Millisecond))

	code, body := n.do(t, http.MethodPost, "/v1/events/exp-busy/terminate?mode=immediate", "")
	require.Equal(t, http.StatusAccepted, code, body)
	rx.waitLife(t, "exp-busy", lifeImmediate)
}

// Two nodes on one PostgreSQL database, both sweeping, every worker busy:
// each waiting event is EXPIRED exactly once, by one of the nodes.
func TestExpiryOnceAcrossTwoNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	d, demoURL := demo(t)
	rec := &recorder{}
	cfgFor := func(name string) *config.Config {
		cfg := expiryConfig(t, demoURL)
		cfg.Node = name
		cfg.Database = config.Database{Driver: config.DriverPostgres, DSN: dsn}
		return cfg
	}
	a := startNode(t, cfgFor("node-a"), rec, nil)
	b := startNode(t, cfgFor("node-b"), rec, nil)
	nodes := []*node{a, b}
	for i := range 2 {
		require.Equal(t, http.StatusAccepted, nodes[i].invoke(t, "demo", "long", fmt.Sprintf("busy-%d", i), "").Status)
	}
	require.Eventually(t, func() bool { return d.Running() == 2 }, 10*time.Second, 5*time.Millisecond)

	const total = 30
	for i := range total {
		require.Equal(t, http.StatusAccepted, nodes[i%2].invoke(t, "demo", "short-lived", fmt.Sprintf("twin-exp-%02d", i), "").Status)
	}
	by := map[string]int{}
	for i := range total {
		rid := fmt.Sprintf("twin-exp-%02d", i)
		assert.Equal(t, lifeExpiredQueued, waitSteps(t, rec.Of, rid), rid)
	}
	// Let both nodes sweep a few more times: still one EXPIRED each.
	time.Sleep(500 * time.Millisecond)
	for i := range total {
		rid := fmt.Sprintf("twin-exp-%02d", i)
		expired := 0
		for _, tr := range rec.Of(rid) {
			if tr.To == event.StateExpired {
				expired++
				by[tr.Node]++
			}
		}
		assert.Equal(t, 1, expired, "%s: EXPIRED reported %d times", rid, expired)
		assert.Zero(t, d.Calls(rid))
	}
	assert.Equal(t, 2, d.Running(), "no worker was freed")
	t.Logf("EXPIRED reported by node: %v", by)
	for i := range 2 {
		code, body := a.do(t, http.MethodPost, fmt.Sprintf("/v1/events/busy-%d/terminate?mode=immediate", i), "")
		require.Equal(t, http.StatusAccepted, code, body)
	}
}
