package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/stack"
)

// cli runs the statustrace CLI against the demo's API and shows the command
// as a user would type it (server and token in the environment).
type cli struct {
	bin, server, token string
	out                io.Writer
}

func (c cli) run(ctx context.Context, args ...string) error {
	fmt.Fprintf(c.out, "\n$ statustrace %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(os.Environ(), "STATUSTRACE_SERVER="+c.server, "STATUSTRACE_TOKEN="+c.token)
	cmd.Stdout = c.out
	cmd.Stderr = c.out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("statustrace %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// present prints, through the CLI, the statistics of the run, the failed
// events, and three lookups (a success after a retry, a failure, an
// aborted event).
func present(ctx context.Context, w io.Writer, s *stack.Stack, bin string, res *Result) error {
	c := cli{bin: bin, server: s.APIURL, token: s.APIToken, out: w}
	fmt.Fprintf(w, "\n== what the statustrace CLI shows (through the API at %s) ==\n", s.APIURL)
	if err := c.run(ctx, "stats", "--since", "15m", "--durations"); err != nil {
		return err
	}
	rejected, err := scrapeRejected(ctx, s.SchedulerURL+"/metrics", "qps_limit")
	arrears, err2 := scrapeRejected(ctx, s.SchedulerURL+"/metrics", "arrears")
	if err = errors.Join(err, err2); err != nil {
		fmt.Fprintf(w, "(scheduler metrics: %v)\n", err)
	} else {
		fmt.Fprintf(w, "\nNot in the statistics: %d invocations of search/%s were rejected by its QPS limit before acceptance (HTTP 429), so no event exists for them (scheduler metric statustrace_scheduler_invocations_rejected{reason=\"qps_limit\"}: %d).\n",
			res.Rejected, fnSuggest, rejected)
		fmt.Fprintf(w, "Nor are the %d invocations of %s/%s refused because the namespace's account is in arrears (HTTP 402 account_in_arrears; statustrace_scheduler_invocations_rejected{reason=\"arrears\"}: %d).\n",
			res.Arrears, nsTrial, fnPreview, arrears)
	}
	if err := c.run(ctx, "events", "list", "--status", event.PublicFailed, "--limit", "5"); err != nil {
		return err
	}
	for _, l := range []struct{ title, key string }{
		{"a success on the second attempt", nsShop + "/" + fnReceipt},
		{"a failure after two retries", nsPayments + "/" + fnRefund},
		{"an event aborted by a graceful terminate", "graceful"},
		{"an event EXPIRED on time (" + digestAge.String() + " max age) while waiting for a retry scheduled an hour later", nsReports + "/" + fnDigest},
	} {
		rid, ok := res.Sample[l.key]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "\n# %s:", l.title)
		if err := c.run(ctx, "events", "get", rid); err != nil {
			return err
		}
	}
	return nil
}

// scrapeRejected sums the scheduler's rejection counter for one reason.
func scrapeRejected(ctx context.Context, url, reason string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum int64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "statustrace_scheduler_invocations_rejected") || !strings.Contains(line, `reason="`+reason+`"`) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += int64(v)
		}
	}
	return sum, sc.Err()
}

// nextSteps says where to look next.
func nextSteps(w io.Writer, s *stack.Stack, dsn string, o Options) {
	fmt.Fprintf(w, "\n== where to look next ==\n")
	fmt.Fprintf(w, "web console       %s/ui/   sign in with the token %s\n", s.APIURL, s.APIToken)
	fmt.Fprintf(w, "statustrace API   %s   token %s (tenant %s)\n", s.APIURL, s.APIToken, Tenant)
	fmt.Fprintf(w, "                  curl -H 'Authorization: Bearer %s' '%s/v1/events?status=FAILED&limit=5'\n", s.APIToken, s.APIURL)
	fmt.Fprintf(w, "the CLI           export STATUSTRACE_SERVER=%s STATUSTRACE_TOKEN=%s\n", s.APIURL, s.APIToken)
	fmt.Fprintf(w, "                  %s/statustrace events list --function checkout --since 10m\n", o.BinDir)
	fmt.Fprintf(w, "                  %s/statustrace stats --namespace payments --function refund --since 15m --series\n", o.BinDir)
	fmt.Fprintf(w, "                  %s/statustrace export --since 15m --out events.ndjson   (see cmd/statustrace/README.md)\n", o.BinDir)
	fmt.Fprintf(w, "scheduler API     curl -H 'Authorization: Bearer %s' -XPOST %s/v1/namespaces/shop/functions/checkout/invocations -d '{}'\n", s.SchedulerToken, s.SchedulerURL)
	fmt.Fprintf(w, "ClickHouse        %s, database %s: tables transitions, events, transitions_minute; full traces in otel_traces\n", dsnForHumans(dsn), o.Database)
	fmt.Fprintf(w, "logs and configs  %s\n", o.WorkDir)
	fmt.Fprintf(w, "Grafana           deploy/compose (docker compose up): ClickHouse, the collector, the scheduler and Grafana with the dashboards of dashboards/\n")
	// deploy/grafana's data source reads the collector's database variable.
	fmt.Fprintf(w, "                  a Grafana provisioned from deploy/grafana reads this demo with STATUSTRACE_DATABASE=%s\n", o.Database)
}

// dsnForHumans hides a password.
func dsnForHumans(dsn string) string {
	if i := strings.Index(dsn, "@"); i >= 0 {
		if j := strings.Index(dsn, "://"); j >= 0 && j < i {
			user := dsn[j+3 : i]
			if k := strings.IndexByte(user, ':'); k >= 0 {
				return dsn[:j+3] + user[:k] + ":…" + dsn[i:]
			}
		}
	}
	return dsn
}
