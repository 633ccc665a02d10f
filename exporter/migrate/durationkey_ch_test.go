package migrate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/internal/schema"
)

// durationSamples are durations (ns) that probe the key: 0 (unknown), the
// smallest ones, both sides of many bin edges (1.02^b, where float
// rounding could put Go and ClickHouse in different bins), the cap and
// random values over the whole UInt64 range.
func durationSamples(rng *rand.Rand) []uint64 {
	out := []uint64{0, 1, 2, 3, 50, 1000, math.MaxUint64, math.MaxUint64 - 1, 1 << 63}
	for b := 1.0; b < 2300; b += 7 {
		edge := math.Pow(schema.DigestGamma, b)
		if edge >= math.MaxUint64/2 {
			break
		}
		e := uint64(edge)
		out = append(out, e-1, e, e+1)
	}
	for range 200 {
		out = append(out, rng.Uint64()>>rng.IntN(64))
	}
	return out
}

// The key the exporter computes (schema.DurationKey over schema.StepCode)
// is the key the column's DEFAULT computes on the real engine, for every
// pair of states and durations around the bins' edges: writers that send
// the key and writers that send the two durations (older exporters) feed
// the per-minute view the same values.
func TestDurationKeyMatchesSQL(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	opts := Options{Database: db.Name}
	if _, err := Up(ctx, db.Conn, opts); err != nil {
		t.Fatal(err)
	}
	// A day ahead, so that the column TTL (expired at once) cannot empty
	// duration_key before the read.
	at := time.Now().UTC().Add(24 * time.Hour)
	rng := rand.New(rand.NewPCG(12, 34))
	ds := durationSamples(rng)
	states := append([]event.State{event.StateNone}, event.States()...)

	type row struct {
		from, to    event.State
		step, endNS uint64
	}
	var want []row
	batch, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+opts.qualifiedFor(schema.Transitions)+
		" (tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state, time, from_state_ns, event_ns)")
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range states {
		for _, to := range states[1:] {
			for i, d := range ds {
				r := row{from, to, d, ds[(i*7+3)%len(ds)]}
				want = append(want, r)
				err := batch.Append("t", "ns", "fn", "", fmt.Sprintf("dk-%d", len(want)), uint64(len(want)), uint32(1),
					from.String(), to.String(), at, r.step, r.endNS)
				if err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	rows, err := db.Conn.Query(ctx, "SELECT seq, duration_key FROM "+opts.qualifiedFor(schema.Transitions)+" WHERE tenant = 't' ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n, bad := 0, 0
	for rows.Next() {
		var seq uint64
		var got uint32
		if err := rows.Scan(&seq, &got); err != nil {
			t.Fatal(err)
		}
		r := want[seq-1]
		if exp := schema.DurationKey(schema.StepCode(r.from, r.to), r.step, r.to.Terminal(), r.endNS); got != exp {
			if bad++; bad <= 10 {
				t.Errorf("%s -> %s, step %d ns, end %d ns: SQL key %#x, Go key %#x", r.from, r.to, r.step, r.endNS, got, exp)
			}
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(want) || bad > 0 {
		t.Fatalf("%d of %d rows read, %d keys differ", n, len(want), bad)
	}
	// The samples reach every step code and the end flag.
	seen := map[int]bool{}
	for _, r := range want {
		seen[schema.StepCode(r.from, r.to)] = true
	}
	for _, k := range []string{schema.DurationQueueWait, schema.DurationRun, schema.DurationRetryDelay} {
		if c, _ := schema.DurationCode(k); !seen[c] {
			t.Errorf("no sample ends a %s step", k)
		}
	}
	t.Logf("%d keys agree", n)
}

// The per-minute view stores the same hashes and keys whether a writer
// sends the duration key (this exporter) or the two durations (older
// ones, through the DEFAULT): one tenant written each way, compared.
func TestMinuteViewSameForBothWriters(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	opts := Options{Database: db.Name}
	if _, err := Up(ctx, db.Conn, opts); err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	type tr struct {
		req         string
		seq         uint64
		from, to    event.State
		at          time.Time
		step, endNS uint64
	}
	var ts []tr
	rng := rand.New(rand.NewPCG(5, 6))
	for e := range 300 {
		req := fmt.Sprintf("req-%d", e)
		at := base.Add(time.Duration(rng.IntN(600)) * time.Second)
		path := []event.State{event.StateQueued, event.StateRunning, event.StateRetrying, event.StateRunning, event.StateFinished}
		if e%3 == 0 {
			path = []event.State{event.StateQueued, event.StateRunning, event.StateFailed}
		}
		var age uint64
		for i, to := range path {
			from := event.StateNone
			if i > 0 {
				from = path[i-1]
			}
			step := uint64(rng.Int64N(int64(5 * time.Second)))
			at = at.Add(time.Duration(step))
			age += step
			var end uint64
			if to.Terminal() {
				end = age
			}
			ts = append(ts, tr{req, uint64(i + 1), from, to, at, step, end})
		}
	}
	table := opts.qualifiedFor(schema.Transitions)
	old, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+table+
		" (tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state, time, from_state_ns, event_ns)")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+table+
		" (tenant, namespace, function, qualifier, request_id, seq, attempt, from_state, to_state, time, duration_key)")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ts {
		if err := old.Append("old", "ns", "fn", "", x.req, x.seq, uint32(1), x.from.String(), x.to.String(), x.at, x.step, x.endNS); err != nil {
			t.Fatal(err)
		}
		key := schema.DurationKey(schema.StepCode(x.from, x.to), x.step, x.to.Terminal(), x.endNS)
		if err := cur.Append("new", "ns", "fn", "", x.req, x.seq, uint32(1), x.from.String(), x.to.String(), x.at, key); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Send(); err != nil {
		t.Fatal(err)
	}
	if err := cur.Send(); err != nil {
		t.Fatal(err)
	}
	read := func(tenant string) (rows int, sum string) {
		t.Helper()
		var n uint64
		err := db.Conn.QueryRow(ctx, "SELECT count(), toString(groupArray((bucket, to_state, m))) FROM ("+
			"SELECT bucket, to_state, maxMap(transitions) AS m FROM "+opts.qualifiedFor(schema.Stats)+
			" WHERE tenant = ? GROUP BY bucket, to_state ORDER BY bucket, to_state)", tenant).Scan(&n, &sum)
		if err != nil {
			t.Fatal(err)
		}
		return int(n), sum
	}
	nOld, old1 := read("old")
	nNew, new1 := read("new")
	if nOld == 0 || nOld != nNew || old1 != new1 {
		t.Fatalf("per-minute rows differ between the writers: %d rows %.300s\nagainst %d rows %.300s", nOld, old1, nNew, new1)
	}
	// The durations made it into the keys (not all zero).
	var withKey uint64
	if err := db.Conn.QueryRow(ctx, "SELECT countIf(k != 0) FROM "+opts.qualifiedFor(schema.Stats)+
		" ARRAY JOIN transitions.2 AS k WHERE tenant = 'new'").Scan(&withKey); err != nil {
		t.Fatal(err)
	}
	if withKey == 0 {
		t.Fatal("no transition carries a duration key")
	}
	t.Logf("%d (minute, state) rows agree, %d keys with durations", nOld, withKey)
}
