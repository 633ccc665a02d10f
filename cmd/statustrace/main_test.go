package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statustrace/statustrace/exporter/migrate"
	"github.com/statustrace/statustrace/internal/api"
	"github.com/statustrace/statustrace/internal/freeport"
	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/testkit/chtest"
	"github.com/statustrace/statustrace/testkit/querytest"
)

type result struct {
	code           int
	stdout, stderr string
}

// cli runs one command line in-process with a fixed clock and environment.
func cli(t *testing.T, ctx context.Context, now time.Time, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
		now: func() time.Time { return now }, getenv: func(k string) string { return env[k] }}
	code := execute(ctx, a, args)
	return result{code, out.String(), errOut.String()}
}

func must(t *testing.T, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

// TestCLI migrates a fresh database with `statustrace migrate`, seeds it,
// then runs every query command directly on ClickHouse and through
// `statustrace serve`, and checks both give the same answers.
func TestCLI(t *testing.T) {
	db := chtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// A DSN without a database: --database selects it (and migrate creates it).
	base := strings.TrimSuffix(db.DSN, "/"+db.Name)
	r := must(t, cli(t, ctx, time.Now(), nil, "migrate", "--dsn", base, "--database", db.Name))
	all := migrate.Migrations()
	if want := fmt.Sprintf("schema version %d", all[len(all)-1].Version); !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "views installed") {
		t.Errorf("migrate: %s", r.stdout)
	}
	r = must(t, cli(t, ctx, time.Now(), nil, "migrate", "--dsn", db.DSN, "-o", "json"))
	var mig struct {
		Applied []uint32
		Version uint32
	}
	if err := json.Unmarshal([]byte(r.stdout), &mig); err != nil || len(mig.Applied) != 0 || mig.Version == 0 {
		t.Errorf("second migrate: %s %v", r.stdout, err)
	}
	must(t, cli(t, ctx, time.Now(), nil, "migrate", "--dsn", db.DSN, "--status"))

	fx := querytest.NewFixture(time.Now())
	if err := fx.Load(ctx, db.Conn); err != nil {
		t.Fatal(err)
	}
	now := fx.Now

	direct := map[string]string{"CLICKHOUSE_DSN": db.DSN, "STATUSTRACE_TENANT": querytest.TenantA}
	tokenA, tokenB := "cli-test-token-tenant-a", "cli-test-token-tenant-b"
	addr := freeport.Addr(t)
	srvEnv := map[string]string{"CLICKHOUSE_DSN": db.DSN, "STATUSTRACE_API_TOKENS": tokenA + "=" + querytest.TenantA + ";" + tokenB + "=" + querytest.TenantB}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan result, 1)
	go func() { served <- cli(t, sctx, now, srvEnv, "serve", "--listen", addr) }()
	waitUp(t, "http://"+addr+"/healthz", served)
	viaAPI := map[string]string{"STATUSTRACE_SERVER": "http://" + addr, "STATUSTRACE_TOKEN": tokenA}

	t.Run("ListJSON", func(t *testing.T) {
		for _, env := range []map[string]string{direct, viaAPI} {
			r := must(t, cli(t, ctx, now, env, "events", "list", "--order", "asc", "-o", "json"))
			var p queries.Page
			if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range p.Events {
				got = append(got, e.RequestID)
			}
			if !slices.Equal(got, querytest.VisibleA) || p.Total != 6 {
				t.Errorf("list: %q %d", got, p.Total)
			}
		}
		// Both sources print the same document.
		a := must(t, cli(t, ctx, now, direct, "events", "list", "--status", "FAILED", "--function", "resize", "-o", "json")).stdout
		b := must(t, cli(t, ctx, now, viaAPI, "events", "list", "--status", "FAILED", "--function", "resize", "-o", "json")).stdout
		if a != b {
			t.Errorf("direct and API differ:\n%s\n%s", a, b)
		}
	})

	t.Run("ListTable", func(t *testing.T) {
		r := must(t, cli(t, ctx, now, viaAPI, "events", "list", "--limit", "4", "--order", "asc"))
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		// Header, four rows (the hostile request ID's newline is escaped,
		// not printed), the count and the next-page hint.
		if len(lines) != 7 || !strings.HasPrefix(lines[0], "REQUEST ID") || !strings.Contains(lines[5], "events 1-4 of 6") || !strings.HasPrefix(lines[6], "next page: --cursor ") {
			t.Fatalf("table:\n%s", r.stdout)
		}
		col := strings.Index(lines[0], "STATUS")
		for _, l := range lines[1:5] {
			if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
				t.Errorf("STATUS column not aligned at %d in %q", col, l)
			}
		}
		if !strings.Contains(lines[1], "2h ago") || !strings.Contains(lines[1], "FINISHED") || !strings.Contains(lines[1], "30s") {
			t.Errorf("first row: %q", lines[1])
		}
		cursor := strings.TrimPrefix(lines[6], "next page: --cursor ")
		r = must(t, cli(t, ctx, now, viaAPI, "events", "list", "--limit", "4", "--order", "asc", "--cursor", cursor))
		if !strings.Contains(r.stdout, `req' OR '1'='1 \\\\ \n-- {tenant:String}`) || !strings.Contains(r.stdout, querytest.ExpiredID) {
			t.Errorf("second page:\n%s", r.stdout)
		}
		r = must(t, cli(t, ctx, now, direct, "events", "list", "--all", "--limit", "2", "-o", "json"))
		var p queries.Page
		if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || len(p.Events) != 6 {
			t.Errorf("--all: %d events %v", len(p.Events), err)
		}
	})

	t.Run("Get", func(t *testing.T) {
		r := must(t, cli(t, ctx, now, viaAPI, "events", "get", querytest.FailedID))
		for _, want := range []string{"FAILED (FAILED)", "Attempts:", "HandlerError: boom 2", "RETRYING", "5s in RUNNING", "30s in RETRYING"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("get output lacks %q:\n%s", want, r.stdout)
			}
		}
		r = cli(t, ctx, now, map[string]string{"STATUSTRACE_SERVER": "http://" + addr, "STATUSTRACE_TOKEN": tokenB}, "events", "get", querytest.FailedID)
		if r.code != 1 || !strings.Contains(r.stderr, "not_found") {
			t.Errorf("tenant B get of A's event: %+v", r)
		}
		r = cli(t, ctx, now, direct, "events", "get", querytest.BOnlyID)
		if r.code != 1 || !strings.Contains(r.stderr, "not found") {
			t.Errorf("direct get of B's event as A: %+v", r)
		}
		r = must(t, cli(t, ctx, now, direct, "events", "get", querytest.HostileRequestID, "-o", "json"))
		var d queries.EventDetail
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.RequestID != querytest.HostileRequestID || len(d.Timeline) != 3 {
			t.Errorf("hostile get: %+v %v", d.Event, err)
		}
	})

	t.Run("Stats", func(t *testing.T) {
		for _, env := range []map[string]string{direct, viaAPI} {
			r := must(t, cli(t, ctx, now, env, "stats", "--since", "3h", "--durations", "--series"))
			for _, want := range []string{"Accepted:", "Failure rate:  60.0%", "Retries:", "HandlerError", "queue wait", "FAILURE RATE", "Waiting now: none", "end to end", "within 1.0%"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stats output lacks %q:\n%s", want, r.stdout)
				}
			}
			r = must(t, cli(t, ctx, now, env, "stats", "--since", "3h", "--function", "resize", "-o", "json"))
			var s queries.Stats
			if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Accepted != 4 {
				t.Errorf("stats json: %s %v", r.stdout, err)
			}
		}
	})

	// A window inside a minute counts what happened in it, as the list
	// does (the stats once widened it to whole minutes).
	t.Run("StatsUnalignedWindow", func(t *testing.T) {
		rfc := func(d time.Duration) string { return fx.Base.Add(d).Format(time.RFC3339Nano) }
		for _, w := range [][2]time.Duration{{5 * time.Second, 20 * time.Second}, {-30 * time.Second, 15 * time.Second}, {-30 * time.Second, 90 * time.Second}} {
			for _, env := range []map[string]string{direct, viaAPI} {
				r := must(t, cli(t, ctx, now, env, "stats", "--from", rfc(w[0]), "--to", rfc(w[1]), "-o", "json"))
				var s queries.Stats
				if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
					t.Fatal(err)
				}
				r = must(t, cli(t, ctx, now, env, "events", "list", "--start-from", rfc(w[0]), "--start-to", rfc(w[1]), "-o", "json"))
				var p queries.Page
				if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
					t.Fatal(err)
				}
				if s.Accepted != p.Total {
					t.Errorf("window %v: stats accepted %d, the list has %d events started in it", w, s.Accepted, p.Total)
				}
			}
		}
		r := must(t, cli(t, ctx, now, direct, "stats", "--from", rfc(5*time.Second), "--to", rfc(20*time.Second)))
		if !strings.Contains(r.stdout, "(15s)") || !strings.Contains(r.stdout, "Accepted:      0") {
			t.Errorf("15 s window:\n%s", r.stdout)
		}
		// Percentiles come from per-minute digests: the output says which
		// minutes, rather than passing them off as the 15 s.
		r = must(t, cli(t, ctx, now, direct, "stats", "--from", rfc(5*time.Second), "--to", rfc(20*time.Second), "--durations"))
		if want := "Durations cover the whole minutes " + fx.Base.Format(time.RFC3339) + " .. " + fx.Base.Add(time.Minute).Format(time.RFC3339); !strings.Contains(r.stdout, want) {
			t.Errorf("15 s window with durations lacks %q:\n%s", want, r.stdout)
		}
	})

	t.Run("Export", func(t *testing.T) {
		dir := t.TempDir()
		files := map[string]string{}
		for name, env := range map[string]map[string]string{"direct": direct, "api": viaAPI} {
			for _, kind := range []string{"events", "transitions"} {
				out := filepath.Join(dir, name+"-"+kind+".ndjson")
				r := must(t, cli(t, ctx, now, env, "export", "--kind", kind, "--since", "3h", "--out", out))
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				files[name+kind] = string(b)
				n := strings.Count(string(b), "\n")
				want := map[string]int{"events": 6, "transitions": 19}[kind]
				if n != want || !strings.Contains(r.stderr, fmt.Sprintf("exported %d lines", want)) {
					t.Errorf("%s %s export: %d lines, stderr %q", name, kind, n, r.stderr)
				}
			}
		}
		if files["directevents"] != files["apievents"] || files["directtransitions"] != files["apitransitions"] {
			t.Error("direct and API exports differ")
		}
		r := must(t, cli(t, ctx, now, direct, "export", "--since", "3h", "--status", "ABORTED"))
		if strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, querytest.AbortedID) {
			t.Errorf("export to stdout: %q", r.stdout)
		}
		// A failed export leaves no file behind.
		out := filepath.Join(dir, "failed.ndjson")
		r = cli(t, ctx, now, map[string]string{"STATUSTRACE_SERVER": "http://" + addr, "STATUSTRACE_TOKEN": "wrong-token-0123456789"}, "export", "--since", "3h", "--out", out)
		if _, err := os.Stat(out); r.code == 0 || !os.IsNotExist(err) {
			t.Errorf("failed export: code %d, file %v", r.code, err)
		}
	})

	t.Run("UsageErrors", func(t *testing.T) {
		for _, c := range []struct {
			env  map[string]string
			args []string
			want string
		}{
			{direct, []string{"events", "list", "--limit", "101"}, "limit"},
			{direct, []string{"events", "list", "--status", "DONE"}, "unknown status"},
			{direct, []string{"events", "list", "--order-by", "name"}, "order field"},
			{direct, []string{"events", "list", "--start-from", "1h", "--start-to", "2h"}, "inverted"},
			{direct, []string{"events", "list", "-o", "yaml"}, "--output"},
			{direct, []string{"stats", "--since", "soon"}, "--since \"soon\""},
			{direct, []string{"stats", "--since", "1h", "--step", "90s"}, "step"},
			{direct, []string{"export", "--kind", "spans", "--since", "1h"}, "--kind"},
			{direct, []string{"export"}, "no window"},
			{nil, []string{"events", "list"}, "nothing to query"},
			{map[string]string{"CLICKHOUSE_DSN": db.DSN}, []string{"events", "list"}, "--tenant"},
			{map[string]string{"STATUSTRACE_SERVER": "http://" + addr}, []string{"events", "list"}, "--token"},
			{map[string]string{"CLICKHOUSE_DSN": db.DSN}, []string{"serve"}, "no API tokens"},
			// Too many values in one filter: refused in both modes before
			// any query, with the cap in the message.
			{direct, append([]string{"events", "list"}, manyFlags("--invoke-type", api.MaxFilterValues+1)...), "at most 100"},
			{viaAPI, append([]string{"events", "list"}, manyFlags("--invoke-type", api.MaxFilterValues+1)...), "at most 100"},
			{direct, append([]string{"export", "--since", "1h"}, manyFlags("--invoke-type", api.MaxFilterValues+1)...), "at most 100"},
			// Refused by the server (HTTP 400): one readable line, exit 2.
			{viaAPI, []string{"events", "get", strings.Repeat("r", 300)}, "invalid_parameter (HTTP 400): request_id: longer than 256 bytes"},
		} {
			r := cli(t, ctx, now, c.env, c.args...)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("%.80v: exit %d, stderr %q; want 2 and one line with %q", c.args, r.code, r.stderr, c.want)
			}
		}
	})

	stop()
	if r := <-served; r.code != 0 {
		t.Errorf("serve exited %d: %s", r.code, r.stderr)
	}
}

// manyFlags repeats flag n times with different values.
func manyFlags(flag string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, flag, fmt.Sprintf("v%d", i))
	}
	return out
}

func waitUp(t *testing.T, url string, served chan result) {
	t.Helper()
	for range 600 {
		select {
		case r := <-served:
			t.Fatalf("serve exited %d: %s", r.code, r.stderr)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("serve did not come up")
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := newProgress(&buf, true, func() time.Time { now = now.Add(time.Second); return now })
	p.setTotal(4)
	for range 2 {
		p.add()
	}
	if !strings.Contains(buf.String(), "\r[===============>              ] 2/4  50%") {
		t.Errorf("half way: %q", buf.String())
	}
	p.add()
	p.add()
	p.finish(nil)
	if !strings.Contains(buf.String(), "[==============================] 4/4 100%\n") || !strings.Contains(buf.String(), "exported 4 lines in") {
		t.Errorf("done: %q", buf.String())
	}
	var nilP *progress
	nilP.setTotal(1) // no progress wanted: no panic
	nilP.add()
	nilP.finish(nil)
}

func TestFormat(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		0: "just now", 12 * time.Second: "12s ago", 5*time.Minute + 3*time.Second: "5m3s ago",
		3*time.Hour + 20*time.Minute: "3h20m ago", 50 * time.Hour: "2d2h ago", -4 * time.Second: "in 4s",
	} {
		if got := ago(now, now.Add(-d)); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
	if got := short(1500 * time.Millisecond); got != "1.5s" {
		t.Errorf("short(1.5s) = %q", got)
	}
	for in, want := range map[string]string{"": "-", "plain": "plain", "a\nb\tc": `a\nb\tc`, "\x1b[31mred": `\x1b[31mr…`, strings.Repeat("x", 50): strings.Repeat("x", 9) + "…"} {
		if got := cell(in, 10); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}
