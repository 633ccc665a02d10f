package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/testkit/querytest"
)

// chromium finds the browser: STATUSTRACE_CHROMIUM, else chromium or
// chromium-browser on PATH (Debian's package; .ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("STATUSTRACE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (apt-get install chromium, or set STATUSTRACE_CHROMIUM): the console's browser test cannot run")
	return ""
}

// browserCtx starts headless Chromium with a fresh profile and the flags
// this network needs (no background connections).
func browserCtx(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	ctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancelT)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start chromium")
	return ctx
}

// TestConsoleInBrowser drives the console in headless Chromium against the
// whole pipeline: sign in, filter, open an event, watch a terminate arrive
// live without a reload, see nothing of another tenant, and a POST without
// the CSRF token refused. With STATUSTRACE_SCREENSHOTS=<dir> it also writes
// a PNG of each page there (make screenshots).
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser test runs the whole pipeline and Chromium; skipped with -short")
	}
	exe := chromium(t)
	s, db := startStackWith(t, e2eConfig(), []string{"--trace-url", "http://grafana.example/explore?traceId={{.TraceID}}", "--live-interval", "200ms"})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sc := stack.NewSchedulerClient(s.SchedulerURL, s.SchedulerToken)
	ac := &api.Client{BaseURL: s.APIURL, Token: s.APIToken}

	// Another tenant's events in the same database, one with an ID this
	// tenant also uses.
	now := time.Now().UTC()
	var other []querytest.Row
	for _, id := range []string{"other-tenant-secret-1", "ok-0"} {
		other = append(other, querytest.History(event.Keys{Tenant: "someone-else", Namespace: "shop", Function: "ok", Qualifier: "LATEST", RequestID: id},
			"async", now.Add(-time.Minute), querytest.Step{To: event.StateRunning, After: time.Second},
			querytest.Step{To: event.StateFailed, After: time.Second, Code: "SecretCode", Message: "secret message of someone else"})...)
	}
	require.NoError(t, querytest.Insert(ctx, db.Conn, other))

	ids := []string{"ok-0", "ok-1", "ok-2", "fail-0", "fail-1", "wait-0", "wait-1"}
	invokeShop(t, ctx, sc, ids...)
	waitFor(t, ctx, func() bool {
		p, err := ac.List(ctx, queries.ListFilter{Statuses: []string{"FAILED"}})
		return err == nil && p.Total == 2
	}, func() string { return "the two failed events never reached the API" })

	shots := os.Getenv("STATUSTRACE_SCREENSHOTS")
	if shots != "" {
		require.NoError(t, os.MkdirAll(shots, 0o755))
	}
	bctx := browserCtx(t, exe)
	base := s.APIURL
	type step = chromedp.Action[chromedp.Void]
	shot := func(name string) step {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			if shots == "" {
				return chromedp.Void{}, nil
			}
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			return chromedp.Void{}, os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		}
	}
	do := func(steps ...step) {
		t.Helper()
		require.NoError(t, chromedp.Do(bctx, steps...))
	}
	// A live page replaces its content while a test reads it; reading the
	// text in one evaluation sees one version of the page, where a node
	// lookup followed by a text read can lose the node in between.
	text := func(sel string) string {
		t.Helper()
		q, err := json.Marshal(sel)
		require.NoError(t, err)
		var v string
		waitFor(t, ctx, func() bool {
			v, err = chromedp.Run(bctx, chromedp.Evaluate[string](
				`(function (e) { return e ? e.innerText : "\u0000" })(document.querySelector(`+string(q)+`))`))
			return err == nil && v != "\x00"
		}, func() string { return fmt.Sprintf("no %s on the page (%v)", sel, err) })
		return v
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	// Sign in: a page asks for the sign-in form first.
	do(chromedp.Navigate(base+"/ui/?range=15m"),
		chromedp.WaitVisible(css("#token")),
		shot("login"),
		// By keyboard: the token field has focus; Enter submits.
		chromedp.SendKeys(css("#token"), s.APIToken+kb.Enter),
		chromedp.WaitVisible(css("#functions")))
	// No inline script anywhere (the CSP would refuse it), and the CSP is set.
	inline, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('script:not([src]):not([type="application/json"]), [onclick], [onload], [onsubmit]').length`))
	require.NoError(t, err)
	require.Zero(t, inline, "inline scripts or handlers")
	txt := text("#functions")
	require.Contains(t, txt, "shop/ok")
	require.Contains(t, txt, "shop/fail")
	do(chromedp.Sleep(500*time.Millisecond), shot("functions"))

	// Filter: FAILED only.
	do(chromedp.Navigate(base+"/ui/events"),
		chromedp.WaitVisible(css("#filters")),
		chromedp.Click(css("#status-FAILED")),
		chromedp.Click(css("#apply")),
		// The unfiltered list has fail-0 too: the checked attribute (not
		// the property a click sets) says the filtered page has loaded.
		chromedp.WaitVisible(css(`#status-FAILED[checked]`)),
		chromedp.WaitVisible(css(`#events tr[data-request-id="fail-0"]`)))
	txt = text("#events")
	require.Contains(t, txt, "fail-1")
	require.Contains(t, txt, "FunctionError", "error code column")
	require.NotContains(t, txt, "ok-1")
	require.NotContains(t, txt, "secret")
	do(shot("events"))

	// Open an event from the list.
	do(chromedp.Click(css(`#events a[href="/ui/events/fail-0"]`)),
		chromedp.WaitVisible(css("#timeline")))
	txt = text("#content")
	require.Contains(t, txt, "fail-0")
	require.Contains(t, txt, "Attempt 3")
	require.NotContains(t, txt, "SecretCode")
	href, err := chromedp.Run(bctx, chromedp.AttributeValue(css("#trace-link"), "href"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(href.Value, "http://grafana.example/explore?traceId="), href.Value)
	// The trace's spans from otel_traces (the contrib exporter batches for
	// 1 s): the page lists them once they are there.
	waitFor(t, ctx, func() bool {
		do(chromedp.Navigate(base+"/ui/events/fail-0"), chromedp.WaitVisible(css("#timeline")))
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('#spans tbody tr').length`))
		t.Logf("fail-0 spans on the page: %d (%v)", n, err)
		return err == nil && n >= 7 // QUEUED, 3x RUNNING, 2x RETRYING, FAILED; the event span too once it ended
	}, func() string { return "fail-0's trace spans never showed on its page" })
	do(shot("event"))

	// Live: wait-0's page is open; it is terminated through the API (which
	// calls the scheduler); the page shows ABORTED without a reload.
	do(chromedp.Navigate(base+"/ui/events/wait-0"),
		chromedp.WaitVisible(css(`main[data-live-open="1"]`)))
	require.Equal(t, event.StateRunning.String(), text("#state"))
	_, err = chromedp.Run(bctx, chromedp.Evaluate[int](`window.__noReload = 42`))
	require.NoError(t, err)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.APIURL+"/v1/events/wait-0/terminate?mode=immediate", nil)
	req.Header.Set("Authorization", "Bearer "+s.APIToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	do(chromedp.WaitVisible(chromedp.Search(`//span[@id="status" and text()="ABORTED"]`)))
	marker, err := chromedp.Run(bctx, chromedp.Evaluate[int](`window.__noReload || 0`))
	require.NoError(t, err)
	require.Equal(t, 42, marker, "the page changed without a reload")
	do(shot("event-live"))

	// The terminate button (graceful) on wait-1, then the change arrives live.
	do(chromedp.Navigate(base+"/ui/events/wait-1"),
		chromedp.WaitVisible(css("#terminate-graceful")),
		chromedp.Click(css("#terminate-graceful")),
		chromedp.WaitVisible(css("#flash")),
		chromedp.WaitVisible(chromedp.Search(`//span[@id="status" and text()="ABORTED"]`)))

	// A POST without the CSRF token is refused (and nothing is sent).
	status, err := chromedp.Run(bctx, chromedp.Evaluate[int](
		`fetch('/ui/events/ok-0/terminate', {method: 'POST', body: new URLSearchParams({mode: 'immediate'})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, status)

	// Another tenant: its event is a 404 like a missing one, and the list
	// shows nothing of it; the same request ID stays apart.
	do(chromedp.Navigate(base+"/ui/events/other-tenant-secret-1"), chromedp.WaitVisible(css("#error")))
	require.Contains(t, text("#content"), "No such event")
	do(chromedp.Navigate(base+"/ui/events?limit=100"), chromedp.WaitVisible(css("#events")))
	txt = text("#content")
	require.NotContains(t, txt, "other-tenant-secret")
	require.NotContains(t, txt, "secret message")
	do(chromedp.Navigate(base+"/ui/events/ok-0"), chromedp.WaitVisible(css("#timeline")))
	require.NotContains(t, text("#content"), "SecretCode", "the same request ID of another tenant stays apart")

	// Statistics, with its chart drawn.
	do(chromedp.Navigate(base+"/ui/stats?range=15m"),
		chromedp.WaitVisible(css("#summary")),
		chromedp.WaitVisible(css(".chart .uplot")))
	txt = text("#content")
	require.Contains(t, txt, "FunctionError")
	require.NotContains(t, txt, "SecretCode")
	do(shot("stats"))

	// A list follows too: a new invocation appears in the open events page
	// without a reload.
	do(chromedp.Navigate(base+"/ui/events?function=ok"), chromedp.WaitVisible(css(`main[data-live-open="1"]`)))
	_, err = chromedp.Run(bctx, chromedp.Evaluate[int](`window.__noReload = 7`))
	require.NoError(t, err)
	code, _, err := sc.Invoke(ctx, stack.Invocation{Namespace: "shop", Function: "ok", RequestID: "ok-live", Payload: []byte(`{}`)})
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, code)
	do(chromedp.WaitVisible(css(`#events tr[data-request-id="ok-live"]`)))
	marker, err = chromedp.Run(bctx, chromedp.Evaluate[int](`window.__noReload || 0`))
	require.NoError(t, err)
	require.Equal(t, 7, marker, "the list changed without a reload")

	// Narrow screen: the events page still renders its table.
	do(chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(base+"/ui/events"),
		chromedp.WaitVisible(css("#events")),
		shot("events-narrow"))
	fmt.Fprintln(os.Stderr, "browser test: console checked in", exe)
}
