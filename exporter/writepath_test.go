package statustraceexporter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/exporter/internal/metadata"
	"github.com/statustrace/statustrace/internal/chwrite"
	"github.com/statustrace/statustrace/testkit/faultproxy"
)

// The write path: what ClickHouse would never keep is dropped before the
// insert, what it refuses is bisected out, and nothing is counted twice.

// telemetrySettings gives the exporter real metrics and an observed log.
func telemetrySettings(t *testing.T) (*componenttest.Telemetry, *observer.ObservedLogs, func() exporter.Settings) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	core, logs := observer.New(zapcore.InfoLevel)
	return tel, logs, func() exporter.Settings {
		set := exportertest.NewNopSettings(metadata.Type)
		set.TelemetrySettings = tel.NewTelemetrySettings()
		set.Logger = zap.New(core)
		return set
	}
}

// poisonBatch is the request from issue 12: valid transitions of one event
// on 101 different days, 4 to 104 days ago, and beside them a valid event of
// another tenant, in one payload.
func poisonBatch(now time.Time) (poison, good []transition) {
	for d := 4; d <= 104; d++ {
		at := now.Add(-time.Duration(d) * 24 * time.Hour)
		poison = append(poison, transition{Transition: event.Transition{
			Keys: event.Keys{Tenant: "poisoner", Namespace: "ns", Function: "fn", Qualifier: "LATEST", RequestID: fmt.Sprintf("old-%03d", d)},
			Seq:  1, Attempt: 1, To: event.StateQueued, TimeUnixNano: at.UnixNano(),
		}, StartUnixNano: at.UnixNano()})
	}
	rng := rand.New(rand.NewPCG(21, 22))
	good = genEvents(rng, 3, now.Add(-time.Minute), 10*time.Second)
	for i := range good {
		good[i].Tenant = "innocent"
	}
	return poison, good
}

// The poison request is written in one go: the expired transitions are
// dropped and counted before the insert, the other tenant's event lands.
// (Before issue 12 the whole batch failed with ClickHouse code 252 and was
// retried forever.)
func TestPoisonBatchDoesNotBlockOthers(t *testing.T) {
	db := newDB(t)
	tel, _, settings := telemetrySettings(t)
	exp := startExporterWith(t, testConfig(db), settings())
	poison, good := poisonBatch(time.Now())
	if err := exp.ConsumeTraces(context.Background(), tracesOf(append(append([]transition{}, poison...), good...))); err != nil {
		t.Fatalf("poison batch failed: %v", err)
	}
	if n := count(t, db, "SELECT count() FROM "+q(db, "transitions")+" WHERE tenant = 'innocent'"); n != uint64(len(good)) {
		t.Errorf("%d of the other tenant's %d transitions stored", n, len(good))
	}
	if n := count(t, db, "SELECT count() FROM "+q(db, "transitions")+" WHERE tenant = 'poisoner'"); n != 0 {
		t.Errorf("%d expired transitions stored", n)
	}
	if got := sumOf(t, tel, "statustrace_exporter_spans_dropped"); got["reason=expired"] != int64(len(poison)) {
		t.Errorf("dropped %v, want %d expired", got, len(poison))
	}
}

// Times and sequence numbers ClickHouse would store but never serve
// correctly: none is stored, each is counted.
func TestOutOfWindowTransitionsAreDropped(t *testing.T) {
	db := newDB(t)
	tel, _, settings := telemetrySettings(t)
	exp := startExporterWith(t, testConfig(db), settings())
	now := time.Now()
	mk := func(rid string, seq uint64, at time.Time) transition {
		return transition{Transition: event.Transition{
			Keys: event.Keys{Tenant: "t", Namespace: "ns", Function: "fn", Qualifier: "LATEST", RequestID: rid},
			Seq:  seq, Attempt: 1, To: event.StateQueued, TimeUnixNano: at.UnixNano(),
		}, StartUnixNano: at.UnixNano()}
	}
	deliver(t, exp, []transition{
		mk("next-year", 1, now.AddDate(1, 0, 0)),
		mk("year-2200", 1, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)),
		mk("seq-zero", 0, now),
		mk("fine", 1, now.Add(-time.Second)),
		mk("slightly-ahead", 1, now.Add(time.Minute)), // within max_future_skew (10m)
	})
	var got string
	if err := db.Conn.QueryRow(queryCtx(t), "SELECT arrayStringConcat(groupArray(request_id), ',') FROM (SELECT request_id FROM "+q(db, "transitions")+" ORDER BY request_id)").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "fine,slightly-ahead" {
		t.Errorf("stored %v, want fine and slightly-ahead", got)
	}
	if d := sumOf(t, tel, "statustrace_exporter_spans_dropped"); d["reason=bad_timestamp"] != 2 || d["reason=invalid_seq"] != 1 {
		t.Errorf("dropped %v", d)
	}
}

// A row that ClickHouse itself refuses (here: a CHECK constraint) is found
// by bisection, dropped and counted as rejected; every other row of the
// batch is written, and the batch does not fail.
//
// It runs with a small batch and with one large enough that its columns
// are appended side by side (appendColumns).
func TestRefusedRowIsBisectedOut(t *testing.T) {
	for _, events := range []int{50, parallelAppendMin / 3} {
		t.Run(fmt.Sprint(events, " events"), func(t *testing.T) { testRefusedRowIsBisectedOut(t, events) })
	}
}

func testRefusedRowIsBisectedOut(t *testing.T, events int) {
	db := newDB(t)
	tel, logs, settings := telemetrySettings(t)
	exp := startExporterWith(t, testConfig(db), settings())
	if err := db.Conn.Exec(queryCtx(t), "ALTER TABLE "+q(db, "transitions")+" ADD CONSTRAINT no_poison CHECK request_id != 'poison'"); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(23, 24))
	ts := genEvents(rng, events, time.Now().Add(-time.Hour), 30*time.Minute)
	if events > 50 && len(ts) < parallelAppendMin {
		t.Fatalf("%d transitions: too few to append the columns side by side", len(ts))
	}
	bad := ts[len(ts)/2]
	bad.RequestID, bad.Seq = "poison", 1
	batch := append(append(append([]transition{}, ts[:len(ts)/2]...), bad), ts[len(ts)/2:]...)
	deliver(t, exp, batch)
	checkExactlyOnce(t, db, ts)
	if d := sumOf(t, tel, "statustrace_exporter_spans_dropped"); d["reason=rejected"] != 1 {
		t.Errorf("dropped %v, want one rejected", d)
	}
	if w := sumOf(t, tel, "statustrace_exporter_rows_written"); w[""] != int64(len(ts)) {
		t.Errorf("rows written %v, want %d", w, len(ts))
	}
	if err := exp.Shutdown(context.Background()); err != nil { // flushes the drop log
		t.Fatal(err)
	}
	lines := logs.FilterMessage("dropped status spans").All()
	if len(lines) == 0 || !strings.Contains(fmt.Sprint(lines[len(lines)-1].ContextMap()["rejected_example"]), "request_id poison") {
		t.Errorf("drop log: %v", lines)
	}
}

// A batch spanning more daily partitions than one INSERT may hold
// (max_partitions_per_insert_block, lowered here to 2) fails with code 252
// as a whole; it is split until every part fits, and nothing is dropped.
func TestTooManyPartitionsIsSplit(t *testing.T) {
	db := newDB(t)
	tel, _, settings := telemetrySettings(t)
	cfg := testConfig(db)
	cfg.ConnectionParams = map[string]string{"max_partitions_per_insert_block": "2"}
	exp := startExporterWith(t, cfg, settings())
	rng := rand.New(rand.NewPCG(25, 26))
	var ts []transition
	for d := range 3 { // three days, all within the 72 h retention
		ts = append(ts, genEvents(rng, 10, time.Now().Add(-time.Duration(d)*23*time.Hour-time.Hour), 10*time.Minute)...)
	}
	for i := range ts {
		ts[i].RequestID = fmt.Sprintf("%s-%d", ts[i].RequestID, i/1000)
	}
	deliver(t, exp, ts)
	checkExactlyOnce(t, db, ts)
	if d := sumOf(t, tel, "statustrace_exporter_spans_dropped"); len(d) != 0 {
		t.Errorf("dropped %v, want nothing", d)
	}
}

// Drops and repairs are counted once per outcome: failed attempts (here
// ClickHouse unreachable) count nothing, the attempt that succeeds counts
// once, however often the batch was retried.
func TestCountersCountOncePerOutcome(t *testing.T) {
	db := newDB(t)
	px := faultproxy.New(t, dsnHost(t, db.DSN))
	tel, _, settings := telemetrySettings(t)
	cfg := testConfig(db)
	cfg.Endpoint = viaProxy(t, db.DSN, px.Addr)
	exp := startExporterWith(t, cfg, settings())

	rng := rand.New(rand.NewPCG(27, 28))
	good := genEvents(rng, 5, time.Now().Add(-time.Hour), time.Minute)
	expired := good[0]
	expired.RequestID, expired.TimeUnixNano = "too-old", time.Now().Add(-100*time.Hour).UnixNano()
	repaired := good[1]
	repaired.RequestID, repaired.Seq, repaired.ErrorMessage = "long-message", 1, strings.Repeat("x", event.MaxErrorMessageBytes+10)
	batch := append(append([]transition{}, good...), expired, repaired)

	px.Set(faultproxy.Refuse)
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := exp.ConsumeTraces(ctx, tracesOf(batch))
		cancel()
		if err == nil || chwrite.Classify(err) != chwrite.Transient {
			t.Fatalf("with ClickHouse refusing connections: %v, want a transient error", err)
		}
	}
	if d := sumOf(t, tel, "statustrace_exporter_spans_dropped"); len(d) != 0 {
		t.Fatalf("failed attempts counted drops: %v", d)
	}
	px.Set(faultproxy.Pass)
	deliver(t, exp, batch)
	if d := sumOf(t, tel, "statustrace_exporter_spans_dropped"); d["reason=expired"] != 1 || len(d) != 1 {
		t.Errorf("dropped %v, want one expired", d)
	}
	if r := sumOf(t, tel, "statustrace_exporter_fields_repaired"); r["field=error_message,repair=truncated"] != 1 {
		t.Errorf("repaired %v, want one truncation", r)
	}
	if w := sumOf(t, tel, "statustrace_exporter_rows_written"); w[""] != int64(len(good)+1) {
		t.Errorf("rows written %v, want %d", w, len(good)+1)
	}
}

// Started while ClickHouse refuses connections, then hangs, the exporter
// starts at once, reports not-ready, and becomes ready (and writes what
// waited) once ClickHouse answers.
func TestStartsWhateverClickHouseDoes(t *testing.T) {
	db := newDB(t)
	px := faultproxy.New(t, dsnHost(t, db.DSN))
	px.Set(faultproxy.Refuse)
	cfg := testConfig(db)
	cfg.Endpoint = viaProxy(t, db.DSN, px.Addr)
	// A hanging attempt is abandoned at this limit (internal/bgstart's
	// tests show that); here the proxy cuts it when ClickHouse "returns".
	cfg.CreateSchemaTimeout = 30 * time.Second
	exp, err := NewFactory().CreateTraces(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	if err != nil {
		t.Fatal(err)
	}
	host := newStatusHost()
	startCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := exp.Start(startCtx, host); err != nil {
		t.Fatalf("start with ClickHouse refusing: %v", err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	if host.last() != componentstatus.StatusRecoverableError {
		t.Fatalf("status %v while the schema is missing, want a recoverable error (not ready)", host.last())
	}
	time.Sleep(time.Second)
	px.Set(faultproxy.Hang)
	time.Sleep(2500 * time.Millisecond) // an attempt hangs
	if host.last() != componentstatus.StatusRecoverableError {
		t.Fatalf("status %v while ClickHouse hangs", host.last())
	}
	rng := rand.New(rand.NewPCG(29, 30))
	ts := genEvents(rng, 5, time.Now().Add(-time.Hour), time.Minute)
	done := make(chan error, 1)
	go func() { done <- exp.ConsumeTraces(context.Background(), tracesOf(ts)) }() // waits for the schema
	px.Set(faultproxy.Pass)
	host.waitFor(t, componentstatus.StatusOK, time.Minute)
	if err := <-done; err != nil {
		t.Fatalf("export that waited for the schema: %v", err)
	}
	checkExactlyOnce(t, db, ts)
}

// A bisection that runs into its deadline (many refused rows) stops
// part-way: what it finished is counted, only the rest comes back to be
// retried, and the retries finish it with every row counted exactly once.
func TestLongBisectionProgressesAcrossRetries(t *testing.T) {
	db := newDB(t)
	tel, _, settings := telemetrySettings(t)
	exp := startExporterWith(t, testConfig(db), settings())
	if err := db.Conn.Exec(queryCtx(t), "ALTER TABLE "+q(db, "transitions")+" ADD CONSTRAINT no_poison CHECK NOT startsWith(request_id, 'poison')"); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(31, 32))
	good := genEvents(rng, 25, time.Now().Add(-time.Hour), 30*time.Minute)
	var batch []transition
	bad := 0
	for i, tr := range good {
		batch = append(batch, tr)
		if i%5 == 0 {
			p := tr
			p.RequestID, p.Seq = fmt.Sprintf("poison-%03d", i), 1
			batch = append(batch, p)
			bad++
		}
	}
	td := tracesOf(batch)
	partial := 0
	// Deadlines too short for the whole bisection; one that is too short for
	// even one insert (a busy engine) grows, as nothing was done.
	deadline := 150 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt == 200 {
			t.Fatal("no end after 200 attempts")
		}
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		err := exp.ConsumeTraces(ctx, td)
		cancel()
		if err == nil {
			break
		}
		var rest consumererror.Traces
		if !errors.As(err, &rest) {
			deadline = min(deadline*3/2, 10*time.Second)
			continue // nothing final yet: the same batch again
		}
		partial++
		if rest.Data().SpanCount() >= td.SpanCount() {
			t.Fatalf("a partial retry of %d spans from %d", rest.Data().SpanCount(), td.SpanCount())
		}
		td = rest.Data()
	}
	if partial == 0 {
		t.Log("the bisection finished within one deadline: nothing partial to check on this machine")
	}
	checkExactlyOnce(t, db, good)
	if d := sumOf(t, tel, "statustrace_exporter_spans_dropped"); d["reason=rejected"] != int64(bad) || len(d) != 1 {
		t.Errorf("dropped %v, want %d rejected", d, bad)
	}
	if w := sumOf(t, tel, "statustrace_exporter_rows_written"); w[""] != int64(len(good)) {
		t.Errorf("rows written %v, want %d", w, len(good))
	}
}
