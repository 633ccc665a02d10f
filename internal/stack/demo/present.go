package demo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/statustrace/statustrace/internal/stack"
)

// present prints the statistics and three lookups (a success, a failure,
// an aborted event).
func present(ctx context.Context, w io.Writer, s *stack.Stack, conn driver.Conn, dsn, database string, res *Result) error {
	fmt.Fprintf(w, "\n== status statistics, tenant %s (events view; SQL: internal/stack/demo/sql.go) ==\n", Tenant)
	if err := printStatsSQL(ctx, w, conn, Tenant); err != nil {
		return err
	}
	rejected, err := scrapeRejected(ctx, s.SchedulerURL+"/metrics")
	if err != nil {
		fmt.Fprintf(w, "(scheduler metrics: %v)\n", err)
	} else {
		fmt.Fprintf(w, "rejected before acceptance (QPS limit; no event recorded): %d  (the demo saw %d answers 429; scheduler metric statustrace_scheduler_invocations_rejected)\n", rejected, res.Rejected)
	}

	for _, l := range []struct{ title, key string }{
		{"a success", nsShop + "/" + fnReceipt},
		{"a failure", nsPayments + "/" + fnRefund},
		{"an aborted event (graceful terminate)", "graceful"},
	} {
		rid, ok := res.Sample[l.key]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "\n== lookup: %s ==\n", l.title)
		if err := printLookupSQL(ctx, w, conn, Tenant, rid); err != nil {
			return err
		}
	}
	return nil
}

// scrapeRejected sums the scheduler's rejection counter.
func scrapeRejected(ctx context.Context, url string) (int64, error) {
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
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "statustrace_scheduler_invocations_rejected") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		sum += int64(v)
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		return 0, nil
	}
	return sum, nil
}

// nextSteps says where to look next.
func nextSteps(w io.Writer, s *stack.Stack, dsn string, o Options) {
	fmt.Fprintf(w, "\n== where to look next ==\n")
	if s.APIURL != "" {
		fmt.Fprintf(w, "statustrace API:  %s  (token %s)\n", s.APIURL, s.APIToken)
	} else {
		fmt.Fprintf(w, "statustrace API / CLI: not in this build yet (cmd/statustrace); the figures above come from SQL on the views.\n")
	}
	fmt.Fprintf(w, "scheduler API:    %s  e.g.\n", s.SchedulerURL)
	fmt.Fprintf(w, "                  curl -XPOST %s/v1/namespaces/shop/functions/checkout/invocations -d '{}'\n", s.SchedulerURL)
	fmt.Fprintf(w, "                  curl %s/v1/events/<request_id>\n", s.SchedulerURL)
	fmt.Fprintf(w, "ClickHouse:       %s, database %s (tables transitions, events, stats_minute, otel_traces)\n", dsnForHumans(dsn), o.Database)
	fmt.Fprintf(w, "logs and configs: %s (collector.log, scheduler.log, scheduler.yaml)\n", o.WorkDir)
	fmt.Fprintf(w, "Grafana:          deploy/compose (docker compose up) runs ClickHouse, the collector, the scheduler and Grafana with the dashboards of dashboards/\n")
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
