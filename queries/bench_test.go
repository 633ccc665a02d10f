package queries_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/statustrace/statustrace/internal/schema"
	"github.com/statustrace/statustrace/queries"
	"github.com/statustrace/statustrace/testkit/chtest"
	"github.com/statustrace/statustrace/testkit/querytest"
)

// BenchmarkQueryCost seeds STATUSTRACE_BENCH_EVENTS events (default 2M,
// three transitions each: QUEUED, RUNNING, FINISHED or FAILED) inside
// ClickHouse, so the materialized views fill events and stats as they do for
// the exporter's inserts, then asks ClickHouse how many rows a lookup and a
// 3-day statistics query read; then it seeds as many again into the same
// window and asks again. It prints
//
//	BENCH lookup_read_rows at_1x=<rows> at_2x=<rows>
//	BENCH stats_read_rows events=<events seeded> read=<rows read>   (at 1x and at 2x)
//
// The counts are ClickHouse's own: the read_rows of the X-ClickHouse-Summary
// header over HTTP (the local engine has no system.query_log), or
// system.query_log with a native-protocol CLICKHOUSE_DSN. Each query the
// package runs for the call is replayed once more to read its counter.
//
// After each load transitions and transitions_minute are merged (OPTIMIZE ...
// FINAL), the state a server's background merges reach: unmerged, every
// insert's part adds a granule to a lookup.
//
// On the embedded local engine (memory limit under 8 GiB) the 1x load is 1M
// events and the 2x load 2M: it keeps its data in WebAssembly memory and
// holds about 2.5M of these events.
func BenchmarkQueryCost(b *testing.B) {
	ctx := context.Background()
	db := benchDB(b)
	n, set := benchEvents(b, 2_000_000)
	if limit := memoryLimit(ctx, db.Conn); !set && limit > 0 && limit < 8<<30 {
		// The embedded local engine keeps everything in WebAssembly memory
		// (max_server_memory_usage 1.8 GiB): it holds about 2.5M of these
		// events, so the 1x load is 1M and the 2x load brings it to 2M.
		n = 1_000_000
		fmt.Printf("BENCH note: max_server_memory_usage is %.1f GiB: 1x = %d events, 2x = %d (set STATUSTRACE_BENCH_EVENTS to override)\n",
			float64(limit)/(1<<30), n, 2*n)
	}
	if err := querytest.Setup(ctx, db.Conn, db.Name); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	// The events spread over [now-71h, now-1h]: inside the 72h window for the
	// whole run.
	start := now.Add(-71 * time.Hour)
	gap := 70 * time.Hour / time.Duration(n)
	counter, err := newReadCounter(db)
	if err != nil {
		b.Fatal(err)
	}
	rec := &recordingConn{Conn: db.Conn}
	st, err := queries.New(ctx, rec)
	if err != nil {
		b.Fatal(err)
	}

	samples := []uint64{}
	ids := map[uint64]string{}
	for i := range 8 {
		s := (uint64(i)*uint64(n)/8 + 12345) % uint64(n)
		samples = append(samples, s)
		if ids[s], err = benchRequestID(ctx, db.Conn, s); err != nil {
			b.Fatal(err)
		}
	}
	measure := func(label string, events int) (lookupMax uint64, statsRead uint64) {
		for _, s := range samples {
			rec.reset()
			d, err := st.Get(ctx, queries.Scope{Tenant: benchTenant(s)}, ids[s])
			if err != nil || d.Status == "" {
				b.Fatalf("lookup %d: %+v %v", s, d, err)
			}
			rows, err := counter.readRows(ctx, rec.calls)
			if err != nil {
				b.Fatal(err)
			}
			lookupMax = max(lookupMax, rows)
		}
		gr, err := lookupGranules(ctx, db.Conn, benchTenant(samples[0]), ids[samples[0]])
		if err != nil {
			b.Fatal(err)
		}
		w := queries.TimeRange{From: now.Add(-72 * time.Hour), To: now}
		rec.reset()
		s, err := st.Stats(ctx, queries.Scope{Tenant: "bench-0"}, queries.StatsQuery{Namespace: "default", Window: w})
		if err != nil {
			b.Fatal(err)
		}
		if statsRead, err = counter.readRows(ctx, rec.calls); err != nil {
			b.Fatal(err)
		}
		rec.reset()
		if _, err := st.Stats(ctx, queries.Scope{Tenant: "bench-0"}, queries.StatsQuery{Namespace: "default", Function: "fn-5", Window: w}); err != nil {
			b.Fatal(err)
		}
		fnRead, err := counter.readRows(ctx, rec.calls)
		if err != nil {
			b.Fatal(err)
		}
		rec.reset()
		page, err := st.List(ctx, queries.Scope{Tenant: "bench-0"}, queries.ListFilter{Namespace: "default", Function: "fn-5", Statuses: []string{"FAILED"}, Desc: true})
		if err != nil || len(page.Events) == 0 {
			b.Fatalf("list: %+v %v", page, err)
		}
		listRead, err := counter.readRows(ctx, rec.calls)
		if err != nil {
			b.Fatal(err)
		}
		// For information: a list reads the function's rows of the events
		// table (twice: page and total), so it grows with the events.
		fmt.Printf("BENCH list_read_rows events=%d read=%d total=%d\n", events, listRead, page.Total)
		statsRows := countRows(b, db.Conn, "SELECT count() FROM "+schema.Stats)
		fmt.Printf("%s: %d events seeded; a lookup (status + timeline) reads at most %d rows, the timeline's key analysis selects granules %s;\n"+
			"    3-day stats for a namespace read %d rows (accepted %d), for one function %d; the stats table holds %d rows\n",
			label, events, lookupMax, gr, statsRead, s.Accepted, fnRead, statsRows)
		fmt.Printf("BENCH stats_read_rows_function events=%d read=%d\n", events, fnRead)
		return lookupMax, statsRead
	}

	// transitions serves lookups, transitions_minute statistics; events is not read here.
	sd := seeding{optimize: []string{schema.Transitions, schema.Stats}}
	sd.seed(b, db.Conn, 0, n, n, start, gap, 0)
	l1, s1 := measure("1x", n)
	fmt.Printf("BENCH stats_read_rows events=%d read=%d\n", n, s1)
	sd.seed(b, db.Conn, uint64(n), n, n, start, gap, gap/2)
	l2, s2 := measure("2x", 2*n)
	fmt.Printf("BENCH stats_read_rows events=%d read=%d\n", 2*n, s2)
	fmt.Printf("BENCH lookup_read_rows at_1x=%d at_2x=%d\n", l1, l2)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := samples[i%len(samples)]
		if _, err := st.Get(ctx, queries.Scope{Tenant: benchTenant(s)}, ids[s]); err != nil {
			b.Fatal(err)
		}
	}
}

func benchTenant(n uint64) string { return "bench-" + strconv.FormatUint(n%2, 10) }

// requestIDExpr is the request_id of event n in seedSQL's rows. IDs and trace IDs
// are compact and compressible on purpose: the local engine keeps its data
// in memory (under 2 GiB in all), and a lookup's cost does not depend on what
// the IDs look like, only on the parts and granules it must open.
const requestIDExpr = "concat('req-', toString(n))"

func benchRequestID(_ context.Context, _ driver.Conn, n uint64) (string, error) {
	return "req-" + strconv.FormatUint(n, 10), nil
}

// seedSQL generates count events numbered from offset, three transitions
// each, spread evenly over the window; one in ten fails with an error.
// tenant: 2 tenants; function: 10 per tenant; so a minute of one function
// holds about events/(70h*60*20) events. With durations it also fills the
// durations the exporter stores (so the digest view runs): queue waits of
// 1.5s plus up to a second, runs of 1.5s plus up to 4 seconds.
func seedSQL(durations bool) string {
	cols := []string{
		schema.ColTenant, schema.ColNamespace, schema.ColFunction, schema.ColQualifier, schema.ColRequestID,
		schema.ColSeq, schema.ColAttempt, schema.ColFromState, schema.ColToState, schema.ColTime,
		schema.ColErrorCode, schema.ColErrorMessage, schema.ColInvokeType, schema.ColNode, schema.ColTraceID,
	}
	extra := ""
	if durations {
		cols = append(cols, schema.ColFromStateNS, schema.ColEventNS)
		extra = `,
    [0, 1500000000 + (n % 1000) * 1000000, 1500000000 + (n % 4000) * 1000000][s],
    if(s = 3, 3000000000 + (n % 4000) * 1000000, 0)`
	}
	return `INSERT INTO ` + schema.Transitions + ` (` + strings.Join(cols, ", ") + `)
SELECT
    concat('bench-', toString(n % 2)),
    'default',
    concat('fn-', toString(intDiv(n, 2) % 10)),
    'LATEST',
    ` + requestIDExpr + `,
    s,
    toUInt32(s >= 2),
    ['', 'QUEUED', 'RUNNING'][s],
    ['QUEUED', 'RUNNING', if(n % 10 = 0, 'FAILED', 'FINISHED')][s],
    fromUnixTimestamp64Nano(toInt64({start_ns:Int64} + toInt64(n % {per_window:UInt64}) * {gap_ns:Int64} + {shift_ns:Int64} + (s - 1) * 1500000000), 'UTC'),
    if(s = 3 AND n % 10 = 0, 'HandlerError', ''),
    if(s = 3 AND n % 10 = 0, 'handler returned an error', ''),
    'async',
    concat('node-', toString(n % 3)),
    toFixedString(unhex(leftPad(hex(n + 1), 32, '0')), 16)` + extra + `
FROM (SELECT number + {offset:UInt64} AS n FROM numbers({count:UInt64}))
ARRAY JOIN [1, 2, 3] AS s`
}

const seedChunk = 100_000

// seeding is one seed run: seedSQL(durations), then OPTIMIZE ... FINAL of
// the tables the benchmark reads, the state a server's merges reach.
type seeding struct {
	durations bool
	optimize  []string
}

func (sd seeding) seed(b *testing.B, conn driver.Conn, offset uint64, count, perWindow int, start time.Time, gap, shift time.Duration) {
	b.Helper()
	ctx := context.Background()
	q := seedSQL(sd.durations)
	t0 := time.Now()
	for done := 0; done < count; done += seedChunk {
		c := min(seedChunk, count-done)
		err := conn.Exec(ctx, q,
			clickhouse.Named("start_ns", start.UnixNano()), clickhouse.Named("per_window", uint64(perWindow)),
			clickhouse.Named("gap_ns", int64(gap)), clickhouse.Named("shift_ns", int64(shift)),
			clickhouse.Named("offset", offset+uint64(done)), clickhouse.Named("count", uint64(c)))
		if err != nil {
			b.Fatalf("seed events %d..%d: %v", offset+uint64(done), offset+uint64(done+c), err)
		}
	}
	inserted := time.Since(t0)
	t1 := time.Now()
	for _, tbl := range sd.optimize {
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+tbl+" FINAL"); err != nil {
			b.Fatalf("optimize %s: %v", tbl, err)
		}
	}
	fmt.Printf("BENCH seed events=%d insert_seconds=%.1f events_per_second=%.0f optimize_seconds=%.1f\n",
		count, inserted.Seconds(), float64(count)/inserted.Seconds(), time.Since(t1).Seconds())
}

// benchDB is the database a read-count benchmark runs in: the local
// endpoint reports read counts over HTTP only (no system.query_log); a
// server named by CLICKHOUSE_DSN, either way.
func benchDB(b *testing.B) *chtest.DB {
	if os.Getenv("CLICKHOUSE_DSN") != "" {
		return chtest.New(b)
	}
	return chtest.NewOn(b, chtest.HTTP)
}

// benchEvents is STATUSTRACE_BENCH_EVENTS, or def when it is not set (set
// says which).
func benchEvents(b *testing.B, def int) (n int, set bool) {
	v := os.Getenv("STATUSTRACE_BENCH_EVENTS")
	if v == "" {
		return def, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1000 {
		b.Fatalf("STATUSTRACE_BENCH_EVENTS=%q: want an integer >= 1000", v)
	}
	return n, true
}

// memoryLimit is the server's max_server_memory_usage, or 0 if unknown.
func memoryLimit(ctx context.Context, conn driver.Conn) uint64 {
	var v string
	if err := conn.QueryRow(ctx, "SELECT value FROM system.server_settings WHERE name = 'max_server_memory_usage'").Scan(&v); err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(v, 10, 64)
	return n
}

func countRows(b *testing.B, conn driver.Conn, q string) uint64 {
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// recordingConn records the queries the Store runs, to replay them.
type recordingConn struct {
	driver.Conn
	calls []call
}

type call struct {
	query string
	args  []any
}

func (r *recordingConn) reset() { r.calls = nil }

func (r *recordingConn) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	r.calls = append(r.calls, call{q, args})
	return r.Conn.Query(ctx, q, args...)
}

func (r *recordingConn) QueryRow(ctx context.Context, q string, args ...any) driver.Row {
	r.calls = append(r.calls, call{q, args})
	return r.Conn.QueryRow(ctx, q, args...)
}

// readCounter replays queries and returns ClickHouse's read_rows for them.
type readCounter struct {
	db   *chtest.DB
	http bool
	base string // http(s)://host:port/
}

func newReadCounter(db *chtest.DB) (*readCounter, error) {
	u, err := url.Parse(db.DSN)
	if err != nil {
		return nil, err
	}
	rc := &readCounter{db: db}
	if u.Scheme == "http" || u.Scheme == "https" {
		rc.http = true
		rc.base = u.Scheme + "://" + u.Host + "/"
	}
	return rc, nil
}

func (rc *readCounter) readRows(ctx context.Context, calls []call) (uint64, error) {
	var total uint64
	for _, c := range calls {
		var n uint64
		var err error
		if rc.http {
			n, err = rc.viaHeader(ctx, c)
		} else {
			n, err = rc.viaQueryLog(ctx, c)
		}
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// paramText renders a bound value as clickhouse-go sends it over HTTP.
func paramText(v any) (string, error) {
	esc := strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`, "\x00", `\0`)
	switch x := v.(type) {
	case string:
		return esc.Replace(x), nil
	case []string:
		q := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
		parts := make([]string, len(x))
		for i, s := range x {
			parts[i] = "'" + q.Replace(s) + "'"
		}
		return "[" + strings.Join(parts, ",") + "]", nil
	case int64, uint64, uint32, uint8, int:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("bench: cannot render parameter of type %T", v)
}

func (rc *readCounter) viaHeader(ctx context.Context, c call) (uint64, error) {
	q := url.Values{"database": {rc.db.Name}}
	for _, a := range c.args {
		nv, ok := a.(driver.NamedValue)
		if !ok {
			return 0, fmt.Errorf("bench: unnamed argument %T", a)
		}
		s, err := paramText(nv.Value)
		if err != nil {
			return 0, err
		}
		q.Set("param_"+nv.Name, s)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rc.base+"?"+q.Encode(), strings.NewReader(c.query))
	if err != nil {
		return 0, err
	}
	if u := rc.db.Options.Auth.Username; u != "" {
		req.Header.Set("X-ClickHouse-User", u)
		req.Header.Set("X-ClickHouse-Key", rc.db.Options.Auth.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("bench: replay: HTTP %d: %s", resp.StatusCode, body)
	}
	var sum struct {
		ReadRows string `json:"read_rows"`
	}
	if err := json.Unmarshal([]byte(resp.Header.Get("X-ClickHouse-Summary")), &sum); err != nil {
		return 0, fmt.Errorf("bench: no X-ClickHouse-Summary: %w", err)
	}
	if sum.ReadRows == "" {
		return 0, errors.New("bench: the endpoint reports no read_rows (the local endpoint's native engine cannot): run make bench-queries-local (a chdb-wasm endpoint of its own), or use a server through CLICKHOUSE_DSN")
	}
	return strconv.ParseUint(sum.ReadRows, 10, 64)
}

func (rc *readCounter) viaQueryLog(ctx context.Context, c call) (uint64, error) {
	id := fmt.Sprintf("statustrace-bench-%d", time.Now().UnixNano())
	rows, err := rc.db.Conn.Query(clickhouse.Context(ctx, clickhouse.WithQueryID(id)), c.query, c.args...)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
	}
	rows.Close()
	if err := rc.db.Conn.Exec(ctx, "SYSTEM FLUSH LOGS"); err != nil {
		return 0, err
	}
	var n uint64
	err = rc.db.Conn.QueryRow(ctx, "SELECT read_rows FROM system.query_log WHERE query_id = {id:String} AND type = 'QueryFinish' ORDER BY event_time DESC LIMIT 1",
		clickhouse.Named("id", id)).Scan(&n)
	return n, err
}

var granulesRE = regexp.MustCompile(`Granules: (\d+)/(\d+)`)

// lookupGranules shows the primary-key analysis of the timeline query:
// granules selected/total per index step.
func lookupGranules(ctx context.Context, conn driver.Conn, tenant, requestID string) (string, error) {
	q := "EXPLAIN indexes = 1 " + queries.SQL("event_timeline")
	rows, err := conn.Query(ctx, q, clickhouse.Named("tenant", tenant), clickhouse.Named("namespaces", []string{}),
		clickhouse.Named("request_id", requestID))
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", err
		}
		if m := granulesRE.FindStringSubmatch(line); m != nil {
			out = append(out, m[1]+"/"+m[2])
		}
	}
	return strings.Join(out, " -> "), rows.Err()
}
