package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/scheduler/api"
	"github.com/statustrace/statustrace/scheduler/config"
)

// Tenant is the demo's account.
const Tenant = "acme"

// The demo's functions: every way an async invocation can end.
const (
	fnCheckout  = "checkout"     // shop: succeeds
	fnReceipt   = "send-receipt" // shop: fails once, succeeds on the retry
	fnThumbnail = "thumbnail"    // media: takes 250 ms
	fnRefund    = "refund"       // payments: fails every attempt, FAILED after 2 retries
	fnExport    = "export"       // reports: slower than its max event age, EXPIRED
	fnReindex   = "reindex"      // batch: runs until terminated (graceful or immediate), ABORTED
	fnSuggest   = "suggest"      // search: rate-limited, a burst gets 429s (no event)
	fnDigest    = "digest"       // reports: fails, its retry would come after its max age: EXPIRED on time while waiting
	fnPreview   = "preview"      // trial: the namespace is put in arrears at run time, invocations get 402 (no event)
	suggestQPS  = 40             // its limit
	workers     = 200            // scheduler workers (reindex holds some until terminated)
	nsShop      = "shop"
	nsMedia     = "media"
	nsPayments  = "payments"
	nsReports   = "reports"
	nsBatch     = "batch"
	nsSearch    = "search"
	nsTrial     = "trial"
	traceShare  = 0.3 // share of invocations that carry a caller's traceparent
	retryWait   = 300 * time.Millisecond
	exportAge   = 3 * time.Second // reports/export's max event age
	digestAge   = 3 * time.Second // reports/digest's max event age
	nDigest     = 3               // reports/digest invocations
	nArrears    = 3               // trial/preview invocations while in arrears
)

// SchedulerConfig is the demo scheduler's config (endpoints on the demo
// functions the scheduler serves).
func SchedulerConfig() config.Config {
	retries := func(n int) *int { return &n }
	backoff := config.Backoff{Initial: config.Duration(retryWait), Max: config.Duration(2 * time.Second), Multiplier: 2}
	d := func(x time.Duration) config.Duration { return config.Duration(x) }
	return config.Config{
		Node:      "demo-node-1",
		Tenant:    Tenant,
		Workers:   workers,
		FetchPoll: d(100 * time.Millisecond),
		// Waiting events past their max age end within this of the deadline.
		ExpiryPoll: d(200 * time.Millisecond),
		Functions: []config.Function{
			{Namespace: nsShop, Name: fnCheckout, Endpoint: stack.DemoBase + "/succeed", Retries: retries(2), Backoff: backoff},
			{Namespace: nsShop, Name: fnReceipt, Endpoint: stack.DemoBase + "/flaky?failures=1", Retries: retries(2), Backoff: backoff},
			{Namespace: nsMedia, Name: fnThumbnail, Qualifier: "v7", Endpoint: stack.DemoBase + "/slow?delay=250ms", Retries: retries(2), Backoff: backoff, Timeout: d(10 * time.Second)},
			{Namespace: nsPayments, Name: fnRefund, Endpoint: stack.DemoBase + "/fail", Retries: retries(2), Backoff: backoff},
			{Namespace: nsReports, Name: fnExport, Endpoint: stack.DemoBase + "/slow?delay=1m", Retries: retries(0), MaxEventAge: d(exportAge), Timeout: d(2 * time.Minute)},
			{Namespace: nsBatch, Name: fnReindex, Endpoint: stack.DemoBase + "/until-terminated",
				TerminateEndpoint: stack.DemoBase + "/until-terminated/terminate", TerminateGrace: d(2 * time.Second),
				Retries: retries(0), Timeout: d(5 * time.Minute)},
			{Namespace: nsSearch, Name: fnSuggest, Endpoint: stack.DemoBase + "/succeed", QPS: suggestQPS, Retries: retries(0)},
			{Namespace: nsReports, Name: fnDigest, Endpoint: stack.DemoBase + "/fail", Retries: retries(3), MaxEventAge: d(digestAge),
				Backoff: config.Backoff{Initial: d(time.Hour), Max: d(time.Hour), Multiplier: 1}},
			{Namespace: nsTrial, Name: fnPreview, Endpoint: stack.DemoBase + "/succeed", Retries: retries(0)},
		},
	}
}

// share of the invocations per function (suggest is sent as one burst on
// top; reindex gets a fixed count).
var mix = []struct {
	ns, fn string
	share  float64
}{
	{nsShop, fnCheckout, 0.55},
	{nsShop, fnReceipt, 0.15},
	{nsMedia, fnThumbnail, 0.15},
	{nsPayments, fnRefund, 0.06},
	{nsReports, fnExport, 0.01},
}

// Result is what the workload did, from the caller's side.
type Result struct {
	Accepted  int            // events created
	Rejected  int            // 429 over the QPS limit: no event
	Arrears   int            // 402: the namespace's account is in arrears, no event
	ByFn      map[string]int // accepted per namespace/function
	Sample    map[string]string
	Graceful  int // reindex terminated gracefully
	Immediate int // reindex terminated at once
	Elapsed   time.Duration
}

// Fire sends n invocations with the demo mix through the scheduler's API,
// plus a burst at the rate-limited function, and terminates the
// long-running ones (half gracefully, half at once) once they run. admin
// (the scheduler's admin token) puts the trial namespace in arrears.
func Fire(ctx context.Context, sc, admin *stack.SchedulerClient, n int, logf func(string, ...any)) (*Result, error) {
	start := time.Now()
	res := &Result{ByFn: map[string]int{}, Sample: map[string]string{}}
	rng := mrand.New(mrand.NewPCG(uint64(start.UnixNano()), 7))

	type job struct {
		ns, fn, traceparent string
	}
	var jobs []job
	nReindex := max(4, n/100)
	for range n - nReindex {
		x := rng.Float64()
		acc := 0.0
		j := job{ns: mix[0].ns, fn: mix[0].fn}
		for _, m := range mix {
			acc += m.share / sumShares()
			if x < acc {
				j = job{ns: m.ns, fn: m.fn}
				break
			}
		}
		if rng.Float64() < traceShare {
			j.traceparent = traceparent()
		}
		jobs = append(jobs, j)
	}
	for range nReindex {
		jobs = append(jobs, job{ns: nsBatch, fn: fnReindex})
	}
	for range nDigest {
		jobs = append(jobs, job{ns: nsReports, fn: fnDigest})
	}
	rng.Shuffle(len(jobs), func(i, k int) { jobs[i], jobs[k] = jobs[k], jobs[i] })

	var (
		mu       sync.Mutex
		reindex  []string
		firstErr error
		sent     atomic.Int64
	)
	record := func(j job, code int, rid string, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			if firstErr == nil && ctx.Err() == nil {
				firstErr = err
			}
		case code == http.StatusAccepted:
			res.Accepted++
			key := j.ns + "/" + j.fn
			res.ByFn[key]++
			if _, ok := res.Sample[key]; !ok {
				res.Sample[key] = rid
			}
			if j.fn == fnReindex {
				reindex = append(reindex, rid)
			}
		case code == http.StatusTooManyRequests:
			res.Rejected++
		case code == http.StatusPaymentRequired && j.ns == nsTrial:
			res.Arrears++
		default:
			if firstErr == nil {
				firstErr = fmt.Errorf("invoke %s/%s: HTTP %d", j.ns, j.fn, code)
			}
		}
	}

	// The trial namespace falls into arrears: its invocations are refused
	// at once (402), nothing is enqueued and no event exists.
	if err := admin.SetStanding(ctx, nsTrial, "arrears"); err != nil {
		return res, err
	}
	for range nArrears {
		j := job{ns: nsTrial, fn: fnPreview}
		code, rid, err := sc.Invoke(ctx, stack.Invocation{Namespace: j.ns, Function: j.fn, Payload: []byte(`{}`)})
		record(j, code, rid, err)
	}
	logf("  trial put in arrears through the scheduler API: %d of %d trial/%s invocations refused with 402", res.Arrears, nArrears, fnPreview)

	// The rate-limited function gets bursts: 4 per second of 3× its limit.
	burstDone := make(chan struct{})
	go func() {
		defer close(burstDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for range 8 {
			var bwg sync.WaitGroup
			for range 3 * suggestQPS / 4 {
				bwg.Add(1)
				go func() {
					defer bwg.Done()
					j := job{ns: nsSearch, fn: fnSuggest}
					code, rid, err := sc.Invoke(ctx, stack.Invocation{Namespace: j.ns, Function: j.fn, Payload: []byte(`{"q":"shoes"}`)})
					record(j, code, rid, err)
				}()
			}
			bwg.Wait()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()

	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				j := jobs[i]
				code, rid, err := sc.Invoke(ctx, stack.Invocation{Namespace: j.ns, Function: j.fn, TraceParent: j.traceparent, Payload: []byte(`{"order":42}`)})
				record(j, code, rid, err)
				if s := sent.Add(1); s%500 == 0 {
					logf("  sent %d/%d invocations", s, len(jobs))
				}
			}
		}()
	}
	wg.Wait()
	<-burstDone
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if firstErr != nil {
		return res, firstErr
	}
	logf("  sent %d invocations in %s: %d accepted, %d rejected by search/%s's QPS limit (%d/s)",
		len(jobs)+8*(3*suggestQPS/4), time.Since(start).Round(100*time.Millisecond), res.Accepted, res.Rejected, fnSuggest, suggestQPS)

	// Terminate the long-running ones once they run: half gracefully (the
	// function is told and winds down), half at once.
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for i, rid := range reindex {
		if err := sc.WaitState(tctx, rid, event.StateRunning.String()); err != nil {
			return res, err
		}
		mode := api.Graceful
		if i%2 == 1 {
			mode = api.Immediate
		}
		code, _, err := sc.Terminate(ctx, rid, mode)
		if err != nil {
			return res, err
		}
		if code != http.StatusAccepted {
			return res, fmt.Errorf("terminate %s: HTTP %d", rid, code)
		}
		if mode == api.Graceful {
			res.Graceful++
			if _, ok := res.Sample["graceful"]; !ok {
				res.Sample["graceful"] = rid
			}
		} else {
			res.Immediate++
		}
	}
	logf("  terminated %d batch/%s events: %d gracefully, %d immediately", len(reindex), fnReindex, res.Graceful, res.Immediate)
	res.Elapsed = time.Since(start)
	return res, nil
}

func sumShares() float64 {
	s := 0.0
	for _, m := range mix {
		s += m.share
	}
	return s
}

// traceparent makes a caller's W3C trace context.
func traceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}
