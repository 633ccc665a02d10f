package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	stapi "github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/scheduler/api"
	"github.com/statustrace/statustrace/scheduler/config"
)

const tenant = "e2e"

// The known mix and what it must produce.
const (
	nOK        = 30 // succeed at once: FINISHED
	nFail      = 6  // fail every attempt (3): FAILED after 2 retries
	nFlaky     = 6  // fail once, succeed on the retry: FINISHED
	nGraceful  = 3  // run until terminated gracefully: TERMINATING, ABORTED
	nImmediate = 3  // terminated immediately: ABORTED
	nExpire    = 2  // slower than their max event age: EXPIRED (public FAILED)
	nLimited   = 7  // sent at once to a function with burst 2 and 0.01 QPS
	nAdmitted  = 2  // of those, accepted; the rest get 429 and leave no event
)

func e2eConfig() config.Config {
	fast := config.Backoff{Initial: dur(10 * time.Millisecond), Max: dur(50 * time.Millisecond), Multiplier: 2}
	return config.Config{
		Node:    "e2e-node",
		Tenant:  tenant,
		Workers: 20,
		// Quick fetches so that the test does not wait on River's poll.
		FetchPoll: dur(50 * time.Millisecond),
		StatusTrace: config.StatusTrace{
			FlushInterval: dur(20 * time.Millisecond),
		},
		Functions: []config.Function{
			{Name: "ok", Namespace: "shop", Endpoint: stack.DemoBase + "/succeed", Retries: ptr(2), Backoff: fast},
			{Name: "fail", Namespace: "shop", Endpoint: stack.DemoBase + "/fail", Retries: ptr(2), Backoff: fast},
			{Name: "flaky", Namespace: "shop", Endpoint: stack.DemoBase + "/flaky?failures=1", Retries: ptr(2), Backoff: fast},
			{Name: "wait", Namespace: "shop", Endpoint: stack.DemoBase + "/until-terminated",
				TerminateEndpoint: stack.DemoBase + "/until-terminated/terminate",
				TerminateGrace:    dur(10 * time.Second), Timeout: dur(2 * time.Minute), Retries: ptr(0)},
			// Long enough for a worker to start it on a loaded machine (an
			// event that expires while still queued never runs).
			{Name: "expire", Namespace: "shop", Endpoint: stack.DemoBase + "/slow?delay=1m",
				MaxEventAge: dur(5 * time.Second), Timeout: dur(2 * time.Minute), Retries: ptr(0)},
			// One token per 100 s: the burst is all it admits in the test.
			{Name: "limited", Namespace: "shop", Endpoint: stack.DemoBase + "/succeed", QPS: 0.01, Burst: nAdmitted, Retries: ptr(0)},
		},
	}
}

// TestEndToEnd: scheduler → plugin → collector → ClickHouse → query side,
// with exact counts per status for a known mix, a lookup with its full
// timeline, and the events' traces in otel_traces.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test runs the whole pipeline; skipped with -short")
	}
	began := time.Now()
	s, db := startStack(t, e2eConfig())
	_, bins := built.Get(t)
	require.NotEmpty(t, s.APIURL, "the statustrace API (cmd/statustrace) is part of the pipeline")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sc := stack.NewSchedulerClient(s.SchedulerURL, s.SchedulerToken)

	type inv struct {
		fn, rid, traceparent string
	}
	var invs []inv
	add := func(fn string, n int) {
		for i := range n {
			invs = append(invs, inv{fn: fn, rid: fmt.Sprintf("%s-%d", fn, i)})
		}
	}
	add("ok", nOK)
	add("fail", nFail)
	add("flaky", nFlaky)
	add("wait", nGraceful+nImmediate)
	add("expire", nExpire)
	// One invocation carries its caller's trace context: the event must
	// join that trace.
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	invs[0].traceparent = "00-" + callerTrace + "-" + callerSpan + "-01"

	var wg sync.WaitGroup
	errs := make(chan error, len(invs)+nLimited)
	for _, in := range invs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, rid, err := sc.Invoke(ctx, stack.Invocation{Namespace: "shop", Function: in.fn, RequestID: in.rid, TraceParent: in.traceparent, Payload: []byte(`{}`)})
			if err == nil && (code != http.StatusAccepted || rid != in.rid) {
				err = fmt.Errorf("invoke %s: HTTP %d, request id %q", in.rid, code, rid)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	// The rate-limited function, sequentially so the token bucket is exact.
	var admitted, rejected []string
	for i := range nLimited {
		rid := fmt.Sprintf("limited-%d", i)
		code, _, err := sc.Invoke(ctx, stack.Invocation{Namespace: "shop", Function: "limited", RequestID: rid, Payload: []byte(`{}`)})
		require.NoError(t, err)
		switch code {
		case http.StatusAccepted:
			admitted = append(admitted, rid)
		case http.StatusTooManyRequests:
			rejected = append(rejected, rid)
		default:
			t.Fatalf("invoke %s: HTTP %d", rid, code)
		}
	}
	require.Len(t, admitted, nAdmitted, "burst %d admits exactly %d", nAdmitted, nAdmitted)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.False(t, t.Failed())

	// Terminate the waiting ones once they run: half gracefully (the
	// function is told and winds down), half at once.
	for i := range nGraceful + nImmediate {
		rid := fmt.Sprintf("wait-%d", i)
		require.NoError(t, sc.WaitState(ctx, rid, "RUNNING"))
		mode := api.Graceful
		if i >= nGraceful {
			mode = api.Immediate
		}
		code, _, err := sc.Terminate(ctx, rid, mode)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, code, "terminate %s", rid)
	}

	// Everything settles with exactly these states, as the API lists them.
	ac := &stapi.Client{BaseURL: s.APIURL, Token: s.APIToken}
	wantStatus := map[string]uint64{
		"FINISHED": nOK + nFlaky + nAdmitted,
		"FAILED":   nFail + nExpire, // public FAILED includes EXPIRED
		"ABORTED":  nGraceful + nImmediate,
		"RUNNING":  0,
		"EXPIRED":  nExpire, // a detailed state
	}
	accepted := uint64(len(invs) + nAdmitted)
	var got map[string]uint64
	var listErr error
	waitFor(t, ctx, func() bool {
		got, listErr = totals(ctx, ac, append(slices.Collect(maps.Keys(wantStatus)), ""))
		return listErr == nil && got[""] == accepted && maps.Equal(wantStatus, withoutKey(got, ""))
	}, func() string {
		return fmt.Sprintf("events per status through the API: %v (total under \"\"), want %v and %d in all (%v)", got, wantStatus, accepted, listErr)
	})

	// No event for the rejected invocations: a lookup is a 404.
	for _, rid := range rejected {
		_, err := ac.Get(ctx, rid)
		var ae *stapi.APIError
		if assert.ErrorAs(t, err, &ae, "lookup of rejected %s", rid) {
			assert.Equal(t, http.StatusNotFound, ae.Status)
		}
	}
	// Attempts per event, from the list.
	for fn, want := range map[string]uint32{"fail": 3, "flaky": 2, "ok": 1} {
		page, err := ac.List(ctx, queries.ListFilter{Namespace: "shop", Function: fn, Limit: queries.MaxLimit})
		require.NoError(t, err)
		require.NotEmpty(t, page.Events)
		for _, e := range page.Events {
			assert.Equal(t, want, e.Attempts, "%s attempts", e.RequestID)
			assert.Equal(t, "e2e-node", e.Node)
			if fn == "fail" {
				assert.Equal(t, "FunctionError", e.ErrorCode, "%s last error", e.RequestID)
			}
		}
	}

	// The statistics: every transition counted once, per state.
	wantTransitions := map[string]uint64{
		"QUEUED":      accepted,
		"RUNNING":     nOK + 3*nFail + 2*nFlaky + nGraceful + nImmediate + nExpire + nAdmitted,
		"RETRYING":    2*nFail + nFlaky,
		"TERMINATING": nGraceful,
		"FINISHED":    nOK + nFlaky + nAdmitted,
		"FAILED":      nFail,
		"ABORTED":     nGraceful + nImmediate,
		"EXPIRED":     nExpire,
	}
	st, err := ac.Stats(ctx, queries.StatsQuery{Window: queries.TimeRange{From: began.Add(-time.Minute).Truncate(time.Minute), To: time.Now().Add(time.Minute).Truncate(time.Minute)}}, false)
	require.NoError(t, err)
	assert.Equal(t, wantTransitions, st.ByState, "transitions per state in the statistics")
	assert.Equal(t, accepted, st.Accepted)
	assert.Equal(t, uint64(2*nFail+nFlaky), st.Retries)
	assert.Equal(t, map[string]uint64{"FINISHED": wantStatus["FINISHED"], "FAILED": wantStatus["FAILED"], "ABORTED": wantStatus["ABORTED"]}, st.ByStatus)
	assert.InDelta(t, float64(nFail+nExpire)/float64(accepted), st.FailureRate, 1e-9)

	// Lookup: a failed event's full timeline.
	d, err := ac.Get(ctx, "fail-0")
	require.NoError(t, err)
	assert.Equal(t, "FAILED", d.Status)
	assert.Equal(t, uint32(3), d.Attempts)
	wantSteps := []struct {
		from, to string
		attempt  uint32
		err      bool
	}{
		{"", "QUEUED", 0, false},
		{"QUEUED", "RUNNING", 1, false},
		{"RUNNING", "RETRYING", 1, true},
		{"RETRYING", "RUNNING", 2, false},
		{"RUNNING", "RETRYING", 2, true},
		{"RETRYING", "RUNNING", 3, false},
		{"RUNNING", "FAILED", 3, true},
	}
	tl := d.Timeline
	require.Len(t, tl, len(wantSteps), "timeline of fail-0: %+v", tl)
	for i, w := range wantSteps {
		g := tl[i]
		assert.Equal(t, w.from+">"+w.to, g.FromState+">"+g.ToState, "step %d", i)
		assert.Equal(t, w.attempt, g.Attempt, "step %d attempt", i)
		assert.Equal(t, w.err, g.ErrorCode != "", "step %d error code %q", i, g.ErrorCode)
		if i > 0 {
			assert.Greater(t, g.Seq, tl[i-1].Seq, "seq grows")
			assert.False(t, g.Time.Before(tl[i-1].Time), "time does not go backwards")
		}
	}
	assert.Contains(t, tl[len(tl)-1].ErrorMessage, "failed on purpose")

	// The same lookup through the CLI binary, as JSON, says the same.
	out, err := exec.CommandContext(ctx, bins.Statustrace, "--server", s.APIURL, "--token", s.APIToken, "events", "get", "fail-0", "-o", "json").Output()
	require.NoError(t, err, "statustrace events get")
	var cli queries.EventDetail
	require.NoError(t, json.Unmarshal(out, &cli), "%s", out)
	assert.Equal(t, *d, cli, "CLI and API agree")

	// A graceful termination went through TERMINATING.
	d, err = ac.Get(ctx, "wait-0")
	require.NoError(t, err)
	assert.Equal(t, []string{"QUEUED", "RUNNING", "TERMINATING", "ABORTED"}, toStates(d.Timeline))

	// Traces: the caller's trace was joined; every event's trace is in
	// otel_traces (written by the contrib exporter, which batches for 1 s).
	d, err = ac.Get(ctx, "ok-0")
	require.NoError(t, err)
	require.Equal(t, callerTrace, d.TraceID)
	var spans, children uint64
	waitFor(t, ctx, func() bool {
		spans, children, err = traceSpans(ctx, db.Conn, callerTrace, callerSpan)
		return err == nil && spans == 4 && children == 1
	}, func() string {
		return fmt.Sprintf("caller trace in otel_traces: %d spans (want QUEUED, RUNNING, FINISHED and the event span), %d children of the caller's span (want 1): %v", spans, children, err)
	})
	var missing uint64
	waitFor(t, ctx, func() bool {
		missing, err = tracesMissing(ctx, db.Conn, tenant)
		return err == nil && missing == 0
	}, func() string { return fmt.Sprintf("%d events have no trace in otel_traces (%v)", missing, err) })
}

// totals asks the API for the number of events per status ("" = all).
func totals(ctx context.Context, ac *stapi.Client, statuses []string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, st := range statuses {
		f := queries.ListFilter{Limit: 1}
		if st != "" {
			f.Statuses = []string{st}
		}
		p, err := ac.List(ctx, f)
		if err != nil {
			return nil, err
		}
		out[st] = p.Total
	}
	return out, nil
}

func withoutKey(m map[string]uint64, k string) map[string]uint64 {
	c := maps.Clone(m)
	delete(c, k)
	return c
}

func toStates(tl []queries.Transition) []string {
	out := make([]string, len(tl))
	for i, t := range tl {
		out[i] = t.ToState
	}
	return out
}

// waitFor polls cond until it holds, failing with msg() if ctx ends first.
func waitFor(t *testing.T, ctx context.Context, cond func() bool, msg func() string) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out: %s", msg())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
