package chlocal_test

// The native TCP protocol against the HTTP interface, and with clients other
// than clickhouse-go's driver.Conn: database/sql, ch-go.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/ch-go"
	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/statustrace/statustrace/testkit/chtest"
)

// hostile strings: quotes, backslashes, control bytes, NUL, invalid UTF-8,
// a multi-byte character, a long one.
var hostile = []string{
	"", "plain", `it's`, `' OR 1=1 --`, `back\slash`, "tab\tnew\nline\rcr", "nul\x00byte",
	"bad utf8 \xff\xfe", "é ü 世界", `{x:String}`, strings.Repeat("long", 2000),
}

// TestProtocolsAgree writes rows of every column kind the schema uses (and
// a few more) over the native protocol, then reads them with the same
// queries over both protocols: names, types and values must be the same.
func TestProtocolsAgree(t *testing.T) {
	db := chtest.NewOn(t, chtest.Native)
	httpOpts, err := clickhouse.ParseDSN(chtest.DSN(t, chtest.HTTP))
	require.NoError(t, err)
	httpOpts.Auth.Database = db.Name
	viaHTTP, err := clickhouse.Open(httpOpts)
	require.NoError(t, err)
	defer viaHTTP.Close()
	c := ctx(t)

	require.NoError(t, db.Conn.Exec(c, `CREATE TABLE kinds (
		id UInt64, u8 UInt8, u16 UInt16, u32 UInt32, i64 Int64, f64 Float64,
		ts DateTime64(9, 'UTC'), dt DateTime('UTC'),
		s String, fs FixedString(4), lc LowCardinality(String), nlc LowCardinality(Nullable(String)),
		ns Nullable(String), nu Nullable(UInt64),
		m Map(String, String), mlc Map(LowCardinality(String), String), arr Array(String), au Array(UInt32),
		tup Tuple(String, UInt32)
	) ENGINE = MergeTree ORDER BY id`))
	batch, err := db.Conn.PrepareBatch(c, "INSERT INTO kinds")
	require.NoError(t, err)
	base := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	const n = 2000
	for i := 0; i < n; i++ {
		h := hostile[i%len(hostile)]
		var ns *string
		var nu *uint64
		if i%3 != 0 {
			v, u := h, uint64(i)*7
			ns, nu = &v, &u
		}
		require.NoError(t, batch.Append(uint64(i), uint8(i), uint16(i*3), uint32(i*70001), int64(-i), float64(i)/3,
			base.Add(time.Duration(i)*time.Nanosecond*1001), base.Add(time.Duration(i)*time.Second),
			h, fmt.Sprintf("%04d", i%10000), []string{"QUEUED", "RUNNING", "FAILED"}[i%3], ns,
			ns, nu,
			map[string]string{"k": h, "i": fmt.Sprint(i)}, map[string]string{"lk": h}, []string{h, "x"}, []uint32{uint32(i), 1},
			[]any{h, uint32(i)}))
	}
	require.NoError(t, batch.Send())

	for _, q := range []struct {
		sql  string
		args []any
	}{
		{sql: "SELECT * FROM kinds ORDER BY id"},
		{sql: "SELECT lc, count(), sum(u32), max(ts), arraySort(groupUniqArray(s)) FROM kinds GROUP BY lc ORDER BY lc"},
		{sql: "SELECT id, m['k'], mlc['lk'], arr[1], tup.1 FROM kinds WHERE s = {s:String} ORDER BY id", args: []any{clickhouse.Named("s", hostile[6])}},
		{sql: "SELECT id FROM kinds WHERE s = {s:String} ORDER BY id", args: []any{clickhouse.Named("s", hostile[7])}},
		{sql: "SELECT * FROM kinds WHERE id > 1000000"}, // no rows: the columns still come
		{sql: "SELECT toDateTime64('2026-01-01 00:00:00.000000001', 9, 'UTC') AS t, [1, 2] AS a, map('a', 1) AS m, NULL AS nothing"},
	} {
		t.Run(strings.Fields(q.sql)[1], func(t *testing.T) {
			nCols, nTypes, nRows := readAll(t, db.Conn, q.sql, q.args...)
			hCols, hTypes, hRows := readAll(t, viaHTTP, q.sql, q.args...)
			require.Equal(t, hCols, nCols, "column names")
			require.Equal(t, hTypes, nTypes, "column types")
			require.Equal(t, len(hRows), len(nRows), "rows")
			for i := range hRows {
				if !reflect.DeepEqual(hRows[i], nRows[i]) {
					t.Fatalf("%s: row %d differs:\nhttp   %#v\nnative %#v", q.sql, i, hRows[i], nRows[i])
				}
			}
		})
	}
	var cnt uint64
	require.NoError(t, db.Conn.QueryRow(c, "SELECT count() FROM kinds").Scan(&cnt))
	require.Equal(t, uint64(n), cnt)
}

// readAll reads every row of a query as comparable values (times as UTC
// nanoseconds, so a time zone's representation does not matter).
func readAll(t *testing.T, conn driver.Conn, sql string, args ...any) (names, types []string, out [][]any) {
	rows, err := conn.Query(ctx(t), sql, args...)
	require.NoError(t, err, sql)
	defer rows.Close()
	names = rows.Columns()
	for _, ct := range rows.ColumnTypes() {
		types = append(types, ct.DatabaseTypeName())
	}
	for rows.Next() {
		vals := make([]any, len(names))
		for i, ct := range rows.ColumnTypes() {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		require.NoError(t, rows.Scan(vals...))
		row := make([]any, len(vals))
		for i, v := range vals {
			row[i] = normalize(reflect.ValueOf(v).Elem().Interface())
		}
		out = append(out, row)
	}
	require.NoError(t, rows.Err())
	return names, types, out
}

func normalize(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case *time.Time:
		if x == nil {
			return nil
		}
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// TestChGoClient: ch-go's own client (another implementation of the
// protocol) inserts and reads back, with LZ4 and ZSTD.
func TestChGoClient(t *testing.T) {
	db := chtest.NewOn(t, chtest.Native)
	for _, comp := range []ch.Compression{ch.CompressionDisabled, ch.CompressionLZ4, ch.CompressionZSTD} {
		t.Run(comp.String(), func(t *testing.T) {
			c := ctx(t)
			client, err := ch.Dial(c, ch.Options{Address: db.Options.Addr[0], Database: db.Name, Compression: comp})
			require.NoError(t, err)
			defer client.Close()
			require.NoError(t, client.Ping(c))
			table := "chgo_" + strings.ToLower(comp.String())
			require.NoError(t, client.Do(c, ch.Query{Body: "CREATE TABLE " + table +
				" (id UInt64, s String, lc LowCardinality(String), ts DateTime64(9)) ENGINE = MergeTree ORDER BY id"}))

			var (
				id  chproto.ColUInt64
				s   chproto.ColStr
				lc  = new(chproto.ColStr).LowCardinality()
				ts  = new(chproto.ColDateTime64).WithPrecision(chproto.PrecisionNano)
				at  = time.Date(2026, 12, 1, 0, 0, 0, 1, time.UTC)
				all = 50_000
			)
			for i := 0; i < all; i++ {
				id.Append(uint64(i))
				s.Append(hostile[i%len(hostile)])
				lc.Append([]string{"a", "b"}[i%2])
				ts.Append(at.Add(time.Duration(i)))
			}
			require.NoError(t, client.Do(c, ch.Query{Body: "INSERT INTO " + table + " VALUES", Input: chproto.Input{
				{Name: "id", Data: &id}, {Name: "s", Data: &s}, {Name: "lc", Data: lc}, {Name: "ts", Data: ts},
			}}))

			var (
				gotID chproto.ColUInt64
				gotS  chproto.ColStr
				gotTS = new(chproto.ColDateTime64)
				rows  int
			)
			require.NoError(t, client.Do(c, ch.Query{
				Body:   "SELECT id, s, ts FROM " + table + " ORDER BY id",
				Result: chproto.Results{{Name: "id", Data: &gotID}, {Name: "s", Data: &gotS}, {Name: "ts", Data: gotTS}},
				OnResult: func(context.Context, chproto.Block) error {
					for i := 0; i < gotID.Rows(); i++ {
						want := rows + i
						if gotID.Row(i) != uint64(want) || gotS.Row(i) != hostile[want%len(hostile)] || !gotTS.Row(i).Equal(at.Add(time.Duration(want))) {
							return fmt.Errorf("row %d: %d %q %v", want, gotID.Row(i), gotS.Row(i), gotTS.Row(i))
						}
					}
					rows += gotID.Rows()
					return nil
				},
			}))
			require.Equal(t, all, rows)

			// An error carries its real code.
			err = client.Do(c, ch.Query{Body: "SELECT * FROM no_such_table"})
			var ex *ch.Exception
			require.True(t, errors.As(err, &ex), "got %T %v", err, err)
			require.True(t, ex.IsCode(chproto.ErrUnknownTable), "code %v", ex.Code)
			require.NoError(t, client.Ping(c), "the connection survives an exception")
		})
	}
}

// TestCancel: a client that gives up on a slow query gets its context's
// error at once, and the endpoint goes on serving.
func TestCancel(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		var x uint8
		err := db.Conn.QueryRow(short, "SELECT sleep(2) + 1").Scan(&x)
		require.Error(t, err)
		// clickhouse-go reports either the context's error or its read
		// deadline (taken from the context) firing first.
		require.True(t, errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "i/o timeout"), "got %T %v", err, err)
		var one uint8
		require.NoError(t, db.Conn.QueryRow(ctx(t), "SELECT 1").Scan(&one))
		require.Equal(t, uint8(1), one)
	})
}

// TestInsertAfterSchemaChange: an INSERT's columns follow ALTER and
// re-created tables at once (the native protocol caches INSERT headers).
func TestInsertAfterSchemaChange(t *testing.T) {
	onEach(t, func(t *testing.T, db *chtest.DB) {
		c := ctx(t)
		insert := func(vals ...any) {
			b, err := db.Conn.PrepareBatch(c, "INSERT INTO sc")
			require.NoError(t, err)
			require.NoError(t, b.Append(vals...))
			require.NoError(t, b.Send())
		}
		require.NoError(t, db.Conn.Exec(c, "CREATE TABLE sc (a UInt32) ENGINE = MergeTree ORDER BY a"))
		insert(uint32(1))
		require.NoError(t, db.Conn.Exec(c, "ALTER TABLE sc ADD COLUMN b String"))
		insert(uint32(2), "two")
		require.NoError(t, db.Conn.Exec(c, "DROP TABLE sc SYNC"))
		require.NoError(t, db.Conn.Exec(c, "CREATE TABLE sc (a String, c UInt8) ENGINE = MergeTree ORDER BY a"))
		insert("three", uint8(3))
		var a string
		var n uint8
		require.NoError(t, db.Conn.QueryRow(c, "SELECT a, c FROM sc").Scan(&a, &n))
		require.Equal(t, "three", a)
		require.Equal(t, uint8(3), n)
	})
}

// TestCancelPacket speaks the protocol with ch-go's encoders: a query, then
// a cancel while the engine runs it. The endpoint answers end of stream,
// drops the result, and the connection goes on (a ping is answered).
func TestCancelPacket(t *testing.T) {
	db := chtest.NewOn(t, chtest.Native)
	conn, err := net.DialTimeout("tcp", db.Options.Addr[0], 10*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(time.Minute)))
	r := chproto.NewReader(conn)
	send := func(b *chproto.Buffer) {
		_, err := conn.Write(b.Buf)
		require.NoError(t, err)
	}
	var b chproto.Buffer
	chproto.ClientHello{Name: "test", Major: 1, ProtocolVersion: chproto.Version, Database: db.Name, User: "default"}.Encode(&b)
	send(&b)
	code, err := r.UVarInt()
	require.NoError(t, err)
	require.Equal(t, uint64(chproto.ServerCodeHello), code)
	var hello chproto.ServerHello
	require.NoError(t, hello.DecodeAware(r, chproto.Version))
	b.Reset()
	b.PutString("") // addendum: quota key
	chproto.Query{ID: "cancel-me", Body: "SELECT sleep(1)", Stage: chproto.StageComplete,
		Info: chproto.ClientInfo{ProtocolVersion: chproto.Version, Major: 1, Interface: chproto.InterfaceTCP, Query: chproto.ClientQueryInitial}}.EncodeAware(&b, chproto.Version)
	chproto.ClientCodeData.Encode(&b)
	chproto.ClientData{}.EncodeAware(&b, chproto.Version)
	chproto.Block{}.EncodeAware(&b, chproto.Version) // no external tables
	send(&b)
	time.Sleep(200 * time.Millisecond) // the engine is running it now
	b.Reset()
	chproto.ClientCodeCancel.Encode(&b)
	send(&b)
	code, err = r.UVarInt()
	require.NoError(t, err)
	require.Equal(t, uint64(chproto.ServerCodeEndOfStream), code, "a cancelled query ends with end of stream, no data")
	b.Reset()
	chproto.ClientCodePing.Encode(&b)
	send(&b)
	code, err = r.UVarInt()
	require.NoError(t, err)
	require.Equal(t, uint64(chproto.ServerCodePong), code, "the connection goes on")
}
