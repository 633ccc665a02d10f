package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/stack"
)

// metricNameRE finds the metric names an alert expression reads.
var metricNameRE = regexp.MustCompile(`\b(?:statustrace|otelcol)_[a-z0-9_]+\b`)

// labelRefRE finds label names, which can look like metric names
// (statustrace_namespace): grouping clauses and $labels references.
var labelRefRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|\$labels\.[a-z0-9_]+`)

// TestAlertMetricsExist runs the pipeline, makes the collector drop one
// malformed status span, and checks that every metric deploy/prometheus's
// alert rules read is exported by the collector or the scheduler under that
// exact name (and the sending queue under exporter="statustrace"): a
// renamed metric would otherwise silence its alert without anyone noticing.
// The plugin spool's counters (the spool alerts) must also move and carry
// every drop reason.
func TestAlertMetricsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline; skipped with -short")
	}
	root, err := stack.ModuleRoot()
	require.NoError(t, err)
	rules, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "alerts.yaml"))
	require.NoError(t, err)
	var want []string
	for _, line := range strings.Split(string(rules), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range metricNameRE.FindAllString(labelRefRE.ReplaceAllString(line, ""), -1) {
			if !slices.Contains(want, m) {
				want = append(want, m)
			}
		}
	}
	require.NotEmpty(t, want)

	s, _ := startStack(t, e2eConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc := stack.NewSchedulerClient(s.SchedulerURL, s.SchedulerToken)
	for i := range 3 {
		code, _, err := sc.Invoke(ctx, stack.Invocation{Namespace: "shop", Function: "ok", RequestID: fmt.Sprintf("alerts-%d", i), Payload: []byte(`{}`)})
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, code)
	}
	// A status span without its attributes: dropped and counted.
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	ss.Scope().SetName(event.ScopeName)
	ss.Spans().AppendEmpty().SetName("RUNNING")
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	resp, err := http.Post("http://"+s.OTLPHTTP+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	var missing []string
	waitFor(t, ctx, func() bool {
		series, err := scrapeSeries(ctx, s.CollectorMetrics, s.SchedulerURL+"/metrics")
		if err != nil {
			missing = []string{err.Error()}
			return false
		}
		missing = missing[:0]
		for _, name := range want {
			if !slices.ContainsFunc(series, func(l string) bool { return l == name || strings.HasPrefix(l, name+"{") }) {
				missing = append(missing, name)
			}
		}
		if !slices.ContainsFunc(series, func(l string) bool {
			return strings.HasPrefix(l, "otelcol_exporter_queue_size{") && strings.Contains(l, `exporter="statustrace"`)
		}) {
			missing = append(missing, `otelcol_exporter_queue_size{exporter="statustrace"}`)
		}
		return len(missing) == 0
	}, func() string { return fmt.Sprintf("metrics the alert rules read but nothing exports: %v", missing) })

	// The spool alerts read live counters, not merely registered ones: the
	// invocations' transitions went through the plugin's spool to the
	// collector, and the drop counter has a series for every reason the
	// StatustraceSpoolDropping description explains.
	for _, name := range []string{"statustrace_reporter_spool_exported_total",
		"statustrace_reporter_spool_bytes", "statustrace_reporter_spool_export_failures_total", "statustrace_reporter_spool_dropped_total"} {
		require.Contains(t, want, name, "the spool alerts read %s", name)
	}
	waitFor(t, ctx, func() bool {
		v, _, err := stack.ScrapeMetric(ctx, s.SchedulerURL+"/metrics", "statustrace_reporter_spool_exported_total")
		return err == nil && v >= 3
	}, func() string { return "the scheduler's plugin reports no transition exported from its spool" })
	for _, reason := range []string{"spool_full", "corrupt", "refused"} {
		_, found, err := stack.ScrapeMetric(ctx, s.SchedulerURL+"/metrics", "statustrace_reporter_spool_dropped_total", `reason="`+reason+`"`)
		require.NoError(t, err)
		require.True(t, found, "statustrace_reporter_spool_dropped_total{reason=%q} is not exported", reason)
		require.True(t, strings.Contains(string(rules), reason), "alerts.yaml explains reason %s", reason)
	}
}

// scrapeSeries returns every series line (name and labels, no value) of the
// Prometheus endpoints.
func scrapeSeries(ctx context.Context, urls ...string) ([]string, error) {
	var out []string
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("scrape %s: %w", u, err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				line = line[:i]
			}
			out = append(out, line)
		}
		resp.Body.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("scrape %s: %w", u, err)
		}
	}
	return out, nil
}
