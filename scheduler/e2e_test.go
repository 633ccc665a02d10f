package scheduler_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The real chain: scheduler → plugin/host → plugin process → OTLP → receiver.
// Each kind of outcome arrives as exactly its transitions; a QPS rejection
// as nothing.
func TestEndToEndWithPlugin(t *testing.T) {
	d, demoURL := demo(t)
	rx := startReceiver(t)
	rep := startReporter(t, rx, 20*time.Millisecond)
	n := startNode(t, testConfig(t, demoURL), rep, nil)

	kinds := []struct {
		fn   string
		want []step
	}{
		{"succeed", lifeSuccess},
		{"fail", lifeFailed},
		{"flaky", lifeFlaky},
		{"expire", lifeExpired},
	}
	ids := map[string]string{}
	for _, k := range kinds {
		r := n.invoke(t, "demo", k.fn, "", callerTraceParent)
		require.Equal(t, http.StatusAccepted, r.Status, r.Body)
		ids[k.fn] = r.RequestID
	}
	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "limited", "e2e-qps-ok", "").Status)
	require.Equal(t, http.StatusTooManyRequests, n.invoke(t, "demo", "limited", "e2e-qps-rejected", "").Status)

	// Both terminate modes on running calls.
	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "long", "e2e-graceful", "").Status)
	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "long", "e2e-immediate", "").Status)
	require.Eventually(t, func() bool { return d.Running() == 2 }, 10*time.Second, 5*time.Millisecond)
	code, body := n.do(t, http.MethodPost, "/v1/events/e2e-graceful/terminate?mode=graceful", "")
	require.Equal(t, http.StatusAccepted, code, body)
	code, body = n.do(t, http.MethodPost, "/v1/events/e2e-immediate/terminate?mode=immediate", "")
	require.Equal(t, http.StatusAccepted, code, body)

	for _, k := range kinds {
		rx.waitLife(t, ids[k.fn], k.want)
		for _, s := range rx.spans(ids[k.fn]) {
			assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.TraceID, "the event joins the caller's trace")
			assert.Equal(t, "test-node", s.Node)
		}
	}
	rx.waitLife(t, "e2e-graceful", lifeGraceful)
	rx.waitLife(t, "e2e-immediate", lifeImmediate)
	rx.waitLife(t, "e2e-qps-ok", lifeSuccess)
	assert.Empty(t, rx.spans("e2e-qps-rejected"), "a rejected request is no event")
	_, hasRoot := rx.root("e2e-qps-rejected")
	assert.False(t, hasRoot)
	assert.Zero(t, rep.Stats().Dropped)
}

// Killing the plugin mid-run costs the scheduler nothing: every invocation
// keeps completing, and the host replays what the dead plugin had not
// acknowledged, so the receiver still gets every event's whole life.
func TestPluginKilledMidRun(t *testing.T) {
	d, demoURL := demo(t)
	rx := startReceiver(t)
	rep := startReporter(t, rx, 20*time.Millisecond)
	n := startNode(t, testConfig(t, demoURL), rep, nil)

	const total = 60
	var ids []string
	for i := range total {
		if i == total/3 {
			pid := rep.PluginPID()
			require.NotZero(t, pid)
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		}
		rid := fmt.Sprintf("kill-%02d", i)
		r := n.invoke(t, "demo", "succeed", rid, "")
		require.Equal(t, http.StatusAccepted, r.Status, r.Body)
		ids = append(ids, rid)
	}
	for _, rid := range ids {
		n.waitState(t, rid, "FINISHED")
		assert.Equal(t, 1, d.Calls(rid))
	}
	for _, rid := range ids {
		rx.waitLife(t, rid, lifeSuccess)
	}
	st := rep.Stats()
	assert.GreaterOrEqual(t, st.Restarts, uint64(1), "the plugin was restarted")
	assert.Zero(t, st.Dropped)
}

// No plugin at all, or a plugin whose collector is down: the scheduler works
// the same.
func TestNoPluginOrDeadCollector(t *testing.T) {
	d, demoURL := demo(t)
	deadRx := &receiver{addr: freeLoopbackAddr(t)} // nothing listens there
	for name, rep := range map[string]func() *node{
		"no plugin": func() *node { return startNode(t, testConfig(t, demoURL), nil, nil) },
		"dead collector": func() *node {
			return startNode(t, testConfig(t, demoURL), startReporter(t, deadRx, 20*time.Millisecond), nil)
		},
	} {
		t.Run(name, func(t *testing.T) {
			n := rep()
			var ids []string
			for i := range 30 {
				rid := fmt.Sprintf("%s-%d", strings.ReplaceAll(name, " ", "-"), i)
				require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "succeed", rid, "").Status)
				ids = append(ids, rid)
			}
			for _, rid := range ids {
				n.waitState(t, rid, "FINISHED")
				assert.Equal(t, 1, d.Calls(rid))
			}
		})
	}
}

func freeLoopbackAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}
