package chlocal_test

// These tests talk to the ClickHouse that chtest provides (the local endpoint,
// or CLICKHOUSE_DSN) only through clickhouse-go, as every component does.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/statustrace/statustrace/testkit/chtest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return c
}

// openWith opens a second connection to the test's database with other options.
func openWith(t *testing.T, db *chtest.DB, mod func(*clickhouse.Options)) driver.Conn {
	o := *db.Options
	mod(&o)
	conn, err := clickhouse.Open(&o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// onEach runs f on a fresh database on each protocol (chtest.Protocols).
func onEach(t *testing.T, f func(t *testing.T, db *chtest.DB)) {
	for _, p := range chtest.Protocols {
		t.Run(string(p), func(t *testing.T) { f(t, chtest.NewOn(t, p)) })
	}
}

// localEngine names the local endpoint's engine (native or wasm), or ""
// for a ClickHouse server. db must be on HTTP.
func localEngine(t *testing.T, db *chtest.DB) string {
	res, err := http.Get("http://" + db.Options.Addr[0] + "/ping")
	require.NoError(t, err)
	res.Body.Close()
	return res.Header.Get("X-Statustrace-Engine")
}

// TestHandshake fails loudly if a clickhouse-go upgrade changes the
// connect-time handshake that the local endpoint answers specially.
func TestHandshake(t *testing.T) {
	db := chtest.NewOn(t, chtest.HTTP)
	v, err := db.Conn.ServerVersion()
	require.NoError(t, err)
	if localEngine(t, db) != "" {
		require.Zero(t, v.Revision, "the local endpoint must report revision 0 over HTTP so the client reads plain Native")
		require.Equal(t, uint64(26), v.Version.Major, "both engines are ClickHouse 26.x")
	}
	var one uint8
	require.NoError(t, db.Conn.QueryRow(ctx(t), "SELECT 1").Scan(&one), "a reply after the handshake must decode")
	require.Equal(t, uint8(1), one)
}

func TestPingAndPlainHTTP(t *testing.T) {
	db := chtest.NewOn(t, chtest.HTTP)
	require.NoError(t, db.Conn.Ping(ctx(t)))
	addr := "http://" + db.Options.Addr[0]
	res, err := http.Get(addr + "/ping")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, "Ok.\n", string(body))

	res, err = http.Get(addr + "/?query=" + url.QueryEscape("SELECT version()"))
	require.NoError(t, err)
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	require.Regexp(t, `^\d+\.\d+`, string(body))
}

// TestSummaryHeader: X-ClickHouse-Summary carries the engine's own read
// counts (benchmarks read them), and none at all where the engine cannot
// tell (the native engine), never a made-up number.
func TestSummaryHeader(t *testing.T) {
	db := chtest.NewOn(t, chtest.HTTP)
	q := "SELECT count() FROM numbers(100000) WHERE number % 3 = 0"
	res, err := http.Get("http://" + db.Options.Addr[0] + "/?query=" + url.QueryEscape(q))
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode, string(body))
	require.Equal(t, "33334\n", string(body))
	var sum map[string]string
	require.NoError(t, json.Unmarshal([]byte(res.Header.Get("X-ClickHouse-Summary")), &sum))
	require.Equal(t, "1", sum["result_rows"])
	if res.Header.Get("X-Statustrace-Engine") == "native" {
		require.NotContains(t, sum, "read_rows")
		return
	}
	require.Equal(t, "100000", sum["read_rows"])
}

// TestEngines covers the table engines and views the schema relies on.
func TestEngines(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		for _, q := range []string{
			`CREATE TABLE raw (ts DateTime64(9), fn LowCardinality(String), v UInt64)
			 ENGINE = MergeTree PARTITION BY toDate(ts) ORDER BY (fn, ts)
			 TTL toDateTime(ts) + INTERVAL 3 DAY SETTINGS ttl_only_drop_parts = 1`,
			`CREATE TABLE agg (fn LowCardinality(String), n AggregateFunction(count), total SimpleAggregateFunction(sum, UInt64))
			 ENGINE = AggregatingMergeTree ORDER BY fn`,
			`CREATE MATERIALIZED VIEW agg_mv TO agg AS SELECT fn, countState() AS n, sum(v) AS total FROM raw GROUP BY fn`,
			`CREATE VIEW big AS SELECT fn, v FROM raw WHERE v > 10`,
			`CREATE VIEW by_fn AS SELECT fn, v FROM raw WHERE fn = {fn:String}`,
			`INSERT INTO raw VALUES (now64(9), 'a', 5), (now64(9), 'a', 50), (now64(9), 'b', 20)`,
		} {
			require.NoError(t, db.Conn.Exec(c, q), q)
		}
		var n, total uint64
		require.NoError(t, db.Conn.QueryRow(c, "SELECT countMerge(n), sum(total) FROM agg WHERE fn = 'a'").Scan(&n, &total))
		require.Equal(t, uint64(2), n)
		require.Equal(t, uint64(55), total)
		require.NoError(t, db.Conn.QueryRow(c, "SELECT count() FROM big").Scan(&n))
		require.Equal(t, uint64(2), n)
		require.NoError(t, db.Conn.QueryRow(c, "SELECT sum(v) FROM by_fn(fn = {f:String})", clickhouse.Named("f", "b")).Scan(&total))
		require.Equal(t, uint64(20), total)
	})
}

type wideRow struct {
	ts   time.Time
	s    string
	lc   string
	u8   uint8
	m    map[string]string
	arr  []string
	u64  uint64
	dt64 time.Time
}

func makeRows(n int) []wideRow {
	base := time.Date(2026, 11, 28, 12, 0, 0, 123456789, time.UTC)
	rows := make([]wideRow, n)
	for i := range rows {
		rows[i] = wideRow{
			ts:  base.Add(time.Duration(i) * time.Nanosecond * 7),
			s:   fmt.Sprintf("request-%d 'quote' \\ back \n line é", i),
			lc:  []string{"QUEUED", "RUNNING", "FINISHED", "FAILED"}[i%4],
			u8:  uint8(i % 256),
			m:   map[string]string{"k": fmt.Sprint(i), "x": "y"},
			arr: []string{"a", fmt.Sprint(i)},
			u64: uint64(i) * 1_000_003,
		}
	}
	return rows
}

// TestBatchRoundTrip writes 100k rows with every column kind the schema uses
// and reads them back exactly, with compression off, LZ4 and ZSTD, on each
// protocol.
func TestBatchRoundTrip(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		for _, comp := range []struct {
			name string
			c    *clickhouse.Compression
		}{{"none", nil}, {"lz4", &clickhouse.Compression{Method: clickhouse.CompressionLZ4}}, {"zstd", &clickhouse.Compression{Method: clickhouse.CompressionZSTD}}} {
			t.Run(comp.name, func(t *testing.T) {
				conn := openWith(t, db, func(o *clickhouse.Options) { o.Compression = comp.c })
				c := ctx(t)
				table := "wide_" + comp.name
				require.NoError(t, conn.Exec(c, `CREATE TABLE `+table+` (
					ts DateTime64(9), s String, lc LowCardinality(String), u8 UInt8,
					m Map(String, String), arr Array(String), u64 UInt64) ENGINE = MergeTree ORDER BY ts`))
				rows := makeRows(100_000)
				batch, err := conn.PrepareBatch(c, "INSERT INTO "+table)
				require.NoError(t, err)
				for _, r := range rows {
					require.NoError(t, batch.Append(r.ts, r.s, r.lc, r.u8, r.m, r.arr, r.u64))
				}
				require.NoError(t, batch.Send())

				got, err := conn.Query(c, "SELECT ts, s, lc, u8, m, arr, u64 FROM "+table+" ORDER BY ts")
				require.NoError(t, err)
				defer got.Close()
				i := 0
				for got.Next() {
					var r wideRow
					require.NoError(t, got.Scan(&r.ts, &r.s, &r.lc, &r.u8, &r.m, &r.arr, &r.u64))
					want := rows[i]
					if !r.ts.Equal(want.ts) || r.s != want.s || r.lc != want.lc || r.u8 != want.u8 ||
						r.m["k"] != want.m["k"] || len(r.m) != 2 || len(r.arr) != 2 || r.arr[1] != want.arr[1] || r.u64 != want.u64 {
						t.Fatalf("row %d: got %+v want %+v", i, r, want)
					}
					i++
				}
				require.NoError(t, got.Err())
				require.Equal(t, len(rows), i)
			})
		}
	})
}

// TestNamedParameters binds hostile strings as parameters: they must arrive
// as data, never as SQL.
func TestNamedParameters(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		require.NoError(t, db.Conn.Exec(c, "CREATE TABLE p (s String) ENGINE = MergeTree ORDER BY s"))
		values := []string{
			`it's`, `' OR 1=1 --`, `back\slash`, `two\\back`, `tab	and
	newline`, `quote" and backtick` + "`", strings.Repeat("x", 10_000), `\'`, `\N`, "",
		}
		for _, v := range values {
			require.NoError(t, db.Conn.Exec(c, "INSERT INTO p SELECT {v:String}", clickhouse.Named("v", v)), "%q", v)
			var got string
			require.NoError(t, db.Conn.QueryRow(c, "SELECT {v:String}", clickhouse.Named("v", v)).Scan(&got))
			require.Equal(t, v, got)
			var n uint64
			require.NoError(t, db.Conn.QueryRow(c, "SELECT count() FROM p WHERE s = {v:String}", clickhouse.Named("v", v)).Scan(&n))
			require.Equal(t, uint64(1), n, "exactly the inserted row matches %q", v)
		}
		var n uint64
		require.NoError(t, db.Conn.QueryRow(c, "SELECT count() FROM p").Scan(&n))
		require.Equal(t, uint64(len(values)), n)
	})
}

// TestErrorCode: a server error surfaces as *clickhouse.Exception with the real code.
func TestErrorCode(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		err := db.Conn.Exec(ctx(t), "SELECT * FROM no_such_table")
		var ex *clickhouse.Exception
		require.True(t, errors.As(err, &ex), "got %T %v", err, err)
		require.Equal(t, int32(60), ex.Code) // UNKNOWN_TABLE

		_, err = db.Conn.Query(ctx(t), "SELEC 1")
		require.True(t, errors.As(err, &ex), "got %T %v", err, err)
		require.Equal(t, int32(62), ex.Code) // SYNTAX_ERROR

		// The connection still works after errors.
		var one uint8
		require.NoError(t, db.Conn.QueryRow(ctx(t), "SELECT 1").Scan(&one))
	})
}

// TestTTL: rows past their TTL are removed by OPTIMIZE ... FINAL.
func TestTTL(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		require.NoError(t, db.Conn.Exec(c, `CREATE TABLE ttl (ts DateTime64(9), v UInt32)
			ENGINE = MergeTree PARTITION BY toDate(ts) ORDER BY ts TTL toDateTime(ts) + INTERVAL 1 DAY`))
		// Stop merges so the expired rows are really inserted and stay until OPTIMIZE.
		require.NoError(t, db.Conn.Exec(c, "SYSTEM STOP TTL MERGES ttl"))
		require.NoError(t, db.Conn.Exec(c, `INSERT INTO ttl SETTINGS materialize_ttl_after_modify = 0 VALUES
			(now64(9), 1), (now64(9) - INTERVAL 2 DAY, 2), (now64(9) - INTERVAL 5 DAY, 3)`))
		var n uint64
		require.NoError(t, db.Conn.QueryRow(c, "SELECT count() FROM ttl").Scan(&n))
		expiredAtInsert := 3 - n
		require.NoError(t, db.Conn.Exec(c, "SYSTEM START TTL MERGES ttl"))
		require.NoError(t, db.Conn.Exec(c, "OPTIMIZE TABLE ttl FINAL"))
		var vals []uint32
		rows, err := db.Conn.Query(c, "SELECT v FROM ttl ORDER BY v")
		require.NoError(t, err)
		for rows.Next() {
			var v uint32
			require.NoError(t, rows.Scan(&v))
			vals = append(vals, v)
		}
		require.NoError(t, rows.Err())
		require.Equal(t, []uint32{1}, vals, "only the fresh row survives (expired at insert: %d)", expiredAtInsert)
	})
}

// TestSession: temporary tables and SET survive within a session_id.
func TestSession(t *testing.T) {
	db := chtest.NewOn(t, chtest.HTTP)
	addr := "http://" + db.Options.Addr[0] + "/"
	post := func(session, q string) (int, string) {
		u := addr + "?database=" + db.Name
		if session != "" {
			u += "&session_id=" + session
		}
		res, err := http.Post(u, "text/plain", strings.NewReader(q))
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, strings.TrimSpace(string(b))
	}
	sess := fmt.Sprintf("s%d", time.Now().UnixNano())
	code, body := post(sess, "CREATE TEMPORARY TABLE tmp (x UInt8)")
	require.Equal(t, 200, code, body)
	code, body = post(sess, "INSERT INTO tmp VALUES (7)")
	require.Equal(t, 200, code, body)
	code, body = post(sess, "SET max_block_size = 4321")
	require.Equal(t, 200, code, body)
	code, body = post(sess, "SELECT sum(x), getSetting('max_block_size') FROM tmp")
	require.Equal(t, 200, code, body)
	require.Equal(t, "7\t4321", body)

	// Another session (and no session) sees neither.
	code, _ = post(sess+"x", "SELECT * FROM tmp")
	require.NotEqual(t, 200, code)
	_, body = post("", "SELECT getSetting('max_block_size') = 4321")
	require.Equal(t, "0", body)
}

// TestSettingsAreRequestScoped: URL settings apply to one request only.
func TestSettingsAreRequestScoped(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := clickhouse.Context(ctx(t), clickhouse.WithSettings(clickhouse.Settings{"max_block_size": 1234}))
		var v string
		require.NoError(t, db.Conn.QueryRow(c, "SELECT getSetting('max_block_size')::String").Scan(&v))
		require.Equal(t, "1234", v)
		require.NoError(t, db.Conn.QueryRow(ctx(t), "SELECT getSetting('max_block_size')::String").Scan(&v))
		require.NotEqual(t, "1234", v)
	})
}

// TestDatabaseSQL uses the database/sql interface.
func TestDatabaseSQL(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		std := clickhouse.OpenDB(db.Options)
		defer std.Close()
		c := ctx(t)
		_, err := std.ExecContext(c, "CREATE TABLE s (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
		require.NoError(t, err)
		tx, err := std.Begin()
		require.NoError(t, err)
		stmt, err := tx.Prepare("INSERT INTO s")
		require.NoError(t, err)
		for i := 0; i < 1000; i++ {
			_, err := stmt.Exec(uint64(i), fmt.Sprintf("n%d", i))
			require.NoError(t, err)
		}
		require.NoError(t, tx.Commit())
		var n uint64
		var name string
		require.NoError(t, std.QueryRowContext(c, "SELECT count(), max(name) FROM s WHERE name != ?", "n0").Scan(&n, &name))
		require.Equal(t, uint64(999), n)
		require.Equal(t, "n999", name)
		var missing string
		err = std.QueryRowContext(c, "SELECT name FROM s WHERE id = 5000").Scan(&missing)
		require.ErrorIs(t, err, sql.ErrNoRows)
	})
}

// TestConcurrency: writers and readers at once; every row lands, reads never fail.
func TestConcurrency(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		require.NoError(t, db.Conn.Exec(c, "CREATE TABLE cc (w UInt8, i UInt32) ENGINE = MergeTree ORDER BY (w, i)"))
		const writers, batches, per = 4, 5, 200
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for b := 0; b < batches; b++ {
					batch, err := db.Conn.PrepareBatch(c, "INSERT INTO cc")
					if err != nil {
						errs <- err
						return
					}
					for i := 0; i < per; i++ {
						_ = batch.Append(uint8(w), uint32(b*per+i))
					}
					if err := batch.Send(); err != nil {
						errs <- err
						return
					}
				}
			}(w)
		}
		for r := 0; r < 3; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 10; k++ {
					var n uint64
					if err := db.Conn.QueryRow(c, "SELECT count() FROM cc").Scan(&n); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		var n, distinct uint64
		require.NoError(t, db.Conn.QueryRow(c, "SELECT count(), uniqExact(w, i) FROM cc").Scan(&n, &distinct))
		require.Equal(t, uint64(writers*batches*per), n)
		require.Equal(t, n, distinct)
	})
}

// TestAsyncInsertDoesNotHoldQueries: an INSERT the client sends with
// async_insert (the otel_traces exporter's: bulk, not on the real-time
// path) runs beside the queries of the shared connection, not in front of
// them. The insert is made slow by a view that sleeps per row; a query
// that sees it in system.processes ran while it was still running. On the
// shared connection the query would have waited for the insert to finish.
// chdb-wasm runs one statement at a time and is skipped.
func TestAsyncInsertDoesNotHoldQueries(t *testing.T) {
	if localEngine(t, chtest.NewOn(t, chtest.HTTP)) == "wasm" {
		t.Skip("chdb-wasm runs one statement at a time")
	}
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		for _, q := range []string{
			"CREATE TABLE ai (i UInt32) ENGINE = MergeTree ORDER BY i",
			"CREATE TABLE ai_slow (i UInt32, s UInt8) ENGINE = MergeTree ORDER BY i",
			"CREATE MATERIALIZED VIEW ai_mv TO ai_slow AS SELECT i, sleepEachRow(0.5) AS s FROM ai",
		} {
			require.NoError(t, db.Conn.Exec(c, q), q)
		}
		inserted := make(chan error, 1)
		go func() {
			batch, err := db.Conn.PrepareBatch(clickhouse.Context(c, clickhouse.WithSettings(clickhouse.Settings{
				"async_insert": 1, "wait_for_async_insert": 1,
			})), "INSERT INTO ai")
			if err == nil {
				for i := 0; i < 4; i++ {
					_ = batch.Append(uint32(i))
				}
				err = batch.Send()
			}
			inserted <- err
		}()
		// Poll until a query sees the insert running, or the insert is done.
		seen, done := false, false
		var insertErr error
		for !seen && !done {
			var running uint64
			require.NoError(t, db.Conn.QueryRow(c,
				"SELECT count() FROM system.processes WHERE query LIKE 'INSERT INTO%ai%'").Scan(&running))
			seen = running > 0
			select {
			case insertErr = <-inserted:
				done = true
			case <-time.After(20 * time.Millisecond):
			}
		}
		require.True(t, seen, "the insert finished before any query could see it running: queries waited behind it")
		if !done {
			insertErr = <-inserted
		}
		require.NoError(t, insertErr)
		var n uint64
		require.NoError(t, db.Conn.QueryRow(c, "SELECT count() FROM ai_slow").Scan(&n))
		require.Equal(t, uint64(4), n, "the insert's rows, through its view")
	})
}

// TestParameterNotLeaked: a parameter one request set is not visible to the
// next request that does not set it.
func TestParameterNotLeaked(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		var got string
		require.NoError(t, db.Conn.QueryRow(c, "SELECT {leak:String}", clickhouse.Named("leak", "secret")).Scan(&got))
		require.Equal(t, "secret", got)
		err := db.Conn.QueryRow(c, "SELECT {leak:String}").Scan(&got)
		var ex *clickhouse.Exception
		require.True(t, errors.As(err, &ex), "got %v", err)
		require.Equal(t, int32(456), ex.Code)
	})
}
