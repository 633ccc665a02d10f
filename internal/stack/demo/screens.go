package demo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/queries"
)

// Chromium finds headless Chromium: STATUSTRACE_CHROMIUM, else chromium or
// chromium-browser on PATH (Debian's package).
func Chromium() (string, error) {
	if p := os.Getenv("STATUSTRACE_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH (apt-get install chromium, or set STATUSTRACE_CHROMIUM)")
}

// Browser starts headless Chromium with a fresh profile in dir and the flags
// a closed network needs (no background connections). cancel stops it.
func Browser(exe, dir string, width, height int) (context.Context, context.CancelFunc) {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(dir),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(width, height),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	return ctx, func() { cancelB(); cancelA() }
}

// screenshots signs in to the console of s and writes a PNG of each page
// into dir: functions, events (failed ones), a failed event, an event
// terminated while its page was open (the change arrives live), statistics
// and the events page on a narrow screen.
func screenshots(ctx context.Context, say func(string, ...any), s *stack.Stack, dir string) error {
	exe, err := Chromium()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	profile, err := os.MkdirTemp("", "statustrace-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)
	bctx, cancel := Browser(exe, profile, 1360, 900)
	defer cancel()
	bctx, cancelT := context.WithTimeout(bctx, 3*time.Minute)
	defer cancelT()

	ac := &api.Client{BaseURL: s.APIURL, Token: s.APIToken}
	failed, err := ac.List(ctx, queries.ListFilter{Namespace: "payments", Function: fnRefund, Limit: 1})
	if err != nil || len(failed.Events) == 0 {
		return fmt.Errorf("screenshots: no failed event to show (%v)", err)
	}
	// An event to terminate while its page is open.
	sc := stack.NewSchedulerClient(s.SchedulerURL, s.SchedulerToken)
	live := fmt.Sprintf("reindex-live-%d", time.Now().UnixNano())
	if code, _, err := sc.Invoke(ctx, stack.Invocation{Namespace: "batch", Function: fnReindex, RequestID: live, Payload: []byte(`{}`)}); err != nil || code != http.StatusAccepted {
		return fmt.Errorf("screenshots: invoke %s: %d %v", live, code, err)
	}
	if err := sc.WaitState(ctx, live, event.StateRunning.String()); err != nil {
		return err
	}

	type step = chromedp.Action[chromedp.Void]
	shot := func(name string) step {
		return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
			png, err := chromedp.FullScreenshot(100)(ctx, t)
			if err != nil {
				return chromedp.Void{}, err
			}
			path := filepath.Join(dir, name+".png")
			say("  %s", path)
			return chromedp.Void{}, os.WriteFile(path, png, 0o644)
		}
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	settle := chromedp.Sleep(700 * time.Millisecond) // charts draw after load
	u := s.APIURL
	err = chromedp.Do(bctx,
		chromedp.Navigate(u+"/ui/login"), chromedp.WaitVisible(css("#token")), shot("login"),
		chromedp.SendKeys(css("#token"), s.APIToken), chromedp.Click(css("#sign-in")), chromedp.WaitVisible(css("#tenant")),
		chromedp.Navigate(u+"/ui/?range=15m"), chromedp.WaitVisible(css("#functions")), settle, shot("functions"),
		chromedp.Navigate(u+"/ui/events?status=FAILED"), chromedp.WaitVisible(css("#events")), shot("events"),
		chromedp.Navigate(u+"/ui/events/"+failed.Events[0].RequestID), chromedp.WaitVisible(css("#timeline")), shot("event"),
		chromedp.Navigate(u+"/ui/events/"+live), chromedp.WaitVisible(css(`main[data-live-open="1"]`)),
	)
	if err != nil {
		return fmt.Errorf("screenshots: %w", err)
	}
	if code, _, err := sc.Terminate(ctx, live, "graceful"); err != nil || code != http.StatusAccepted {
		return fmt.Errorf("screenshots: terminate %s: %d %v", live, code, err)
	}
	err = chromedp.Do(bctx,
		chromedp.WaitVisible(chromedp.Search(`//span[@id="status" and text()="`+event.StateAborted.Public()+`"]`)), shot("event-live"),
		chromedp.Navigate(u+"/ui/stats?range=15m"), chromedp.WaitVisible(css(".chart .uplot")), settle, shot("stats"),
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(u+"/ui/events"), chromedp.WaitVisible(css("#events")), shot("events-narrow"),
	)
	if err != nil {
		return fmt.Errorf("screenshots: %w", err)
	}
	return nil
}
