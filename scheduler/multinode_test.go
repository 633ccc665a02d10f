package scheduler_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/scheduler/config"
	"github.com/statustrace/statustrace/testkit/pgtest"
)

// Two nodes on one PostgreSQL database share the work: every event runs
// exactly as often as its outcome needs, both nodes take part, seq keeps
// growing when an event's attempts run on different nodes, and a node can
// terminate an event that runs on the other one.
func TestTwoNodesShareOnePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	d, demoURL := demo(t)
	rec := &recorder{}
	cfgFor := func(name string) *config.Config {
		cfg := testConfig(t, demoURL)
		cfg.Node = name
		cfg.Database = config.Database{Driver: config.DriverPostgres, DSN: dsn}
		cfg.Workers = 8
		return cfg
	}
	a := startNode(t, cfgFor("node-a"), rec, nil)
	b := startNode(t, cfgFor("node-b"), rec, nil)
	nodes := []*node{a, b}

	const perKind = 40
	var wg sync.WaitGroup
	ids := map[string][]string{}
	var mu sync.Mutex
	for _, fn := range []string{"succeed", "flaky"} {
		for i := range perKind {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rid := fmt.Sprintf("%s-%02d", fn, i)
				r := nodes[i%2].invoke(t, "demo", fn, rid, "")
				assert.Equal(t, http.StatusAccepted, r.Status, r.Body)
				mu.Lock()
				ids[fn] = append(ids[fn], rid)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()

	worked := map[string]int{}
	for fn, want := range map[string][]step{"succeed": lifeSuccess, "flaky": lifeFlaky} {
		for _, rid := range ids[fn] {
			assert.Equal(t, want, waitSteps(t, rec.Of, rid), "life of %s", rid)
			for _, tr := range rec.Of(rid) {
				if tr.To == event.StateRunning {
					worked[tr.Node]++
				}
			}
		}
	}
	// Exactly-once execution per attempt, across nodes.
	for _, rid := range ids["succeed"] {
		assert.Equal(t, 1, d.Calls(rid), "%s ran more than once", rid)
	}
	for _, rid := range ids["flaky"] {
		assert.Equal(t, 2, d.Calls(rid), "%s: one failed and one good attempt", rid)
	}
	assert.Positive(t, worked["node-a"], "node-a worked no event: %v", worked)
	assert.Positive(t, worked["node-b"], "node-b worked no event: %v", worked)

	// Terminate through the node that does NOT run the event.
	require.Equal(t, http.StatusAccepted, a.invoke(t, "demo", "long", "cross-1", "").Status)
	var runner string
	require.Eventually(t, func() bool {
		for _, tr := range rec.Of("cross-1") {
			if tr.To == event.StateRunning {
				runner = tr.Node
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return d.Running() == 1 }, 10*time.Second, 5*time.Millisecond)
	other := a
	if runner == "node-a" {
		other = b
	}
	code, body := other.do(t, http.MethodPost, "/v1/events/cross-1/terminate?mode=graceful", "")
	require.Equal(t, http.StatusAccepted, code, body)
	assert.Equal(t, lifeGraceful, waitSteps(t, rec.Of, "cross-1"))
	for _, tr := range rec.Of("cross-1")[1:] {
		assert.Equal(t, runner, tr.Node, "the running node reports its event's changes")
	}
	other.waitState(t, "cross-1", "ABORTED")
}
