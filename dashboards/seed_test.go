package dashboards_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/statustrace/statustrace/event"
	statustraceexporter "github.com/statustrace/statustrace/exporter"
	"github.com/statustrace/statustrace/exporter/migrate"
	"github.com/statustrace/statustrace/plugin/spans"
	"github.com/statustrace/statustrace/testkit/chtest"
)

// The demo-like data the dashboards are tested on: two tenants, a few
// functions, events that finish, fail after a retry, succeed on a retry, are
// aborted, expire, are still in flight; a request ID full of SQL
// metacharacters; an event past the retention window. It is delivered as
// the plugin's status spans through the real statustrace exporter (rows,
// materialized views) and the contrib ClickHouse exporter (otel_traces),
// with re-deliveries and out-of-order arrival as in production.

// step is one transition of a seeded event.
type step struct {
	to      event.State
	attempt uint32
	after   time.Duration // since the event was queued
	code    string
	msg     string
}

// seedEvent is one async event.
type seedEvent struct {
	tenant, namespace, function, id string
	queued                          time.Time
	steps                           []step
}

// transition is one seeded transition, as the scheduler reports it.
type transition struct {
	ev   *seedEvent
	seq  uint64
	from event.State
	step
}

func (t transition) at() time.Time { return t.ev.queued.Add(t.after) }

var (
	okSteps = []step{
		{to: event.StateQueued},
		{to: event.StateRunning, attempt: 1, after: 2 * time.Second},
		{to: event.StateFinished, attempt: 1, after: 5 * time.Second},
	}
	failSteps = []step{
		{to: event.StateQueued},
		{to: event.StateRunning, attempt: 1, after: time.Second},
		{to: event.StateRetrying, attempt: 1, after: 3 * time.Second, code: "FunctionTimeout", msg: "timed out after 2s"},
		{to: event.StateRunning, attempt: 2, after: 13 * time.Second},
		{to: event.StateFailed, attempt: 2, after: 16 * time.Second, code: "FunctionTimeout", msg: "timed out after 3s"},
	}
	retryOKSteps = []step{
		{to: event.StateQueued},
		{to: event.StateRunning, attempt: 1, after: time.Second},
		{to: event.StateRetrying, attempt: 1, after: 2 * time.Second, code: "ECONNRESET", msg: "connection reset by peer"},
		{to: event.StateRunning, attempt: 2, after: 4 * time.Second},
		{to: event.StateFinished, attempt: 2, after: 6 * time.Second},
	}
	abortSteps = []step{
		{to: event.StateQueued},
		{to: event.StateRunning, attempt: 1, after: time.Second},
		{to: event.StateTerminating, attempt: 1, after: 10 * time.Second},
		{to: event.StateAborted, attempt: 1, after: 12 * time.Second},
	}
	expireSteps = []step{
		{to: event.StateQueued},
		{to: event.StateExpired, after: time.Minute, code: "MaxEventAge", msg: "event older than 1m"},
	}
)

// hostileID is a real request ID that must be found exactly and break
// nothing.
const hostileID = "x' OR 1=1 --\\' \"ä\n);DROP TABLE events;--"

// seedEvents builds the data set relative to now.
func seedEvents(now time.Time) []*seedEvent {
	ago := func(m int) time.Time { return now.Add(-time.Duration(m) * time.Minute) }
	evs := []*seedEvent{
		{"acme", "shop", "resize", "r-ok-1", ago(100), okSteps},
		{"acme", "shop", "resize", "r-ok-2", ago(90), okSteps},
		{"acme", "shop", "resize", "r-ok-3", ago(70), okSteps},
		{"acme", "shop", "resize", "r-ok-4", ago(50), okSteps},
		{"acme", "shop", "resize", "r-ok-5", ago(30), okSteps},
		{"acme", "shop", "resize", "r-ok-6", ago(10), okSteps},
		{"acme", "shop", "checkout", "r-fail-1", ago(95), failSteps},
		{"acme", "shop", "checkout", "r-fail-2", ago(65), failSteps},
		{"acme", "shop", "checkout", "r-fail-3", ago(35), failSteps},
		{"acme", "shop", "checkout", "r-exp-1", ago(45), expireSteps},
		{"acme", "media", "transcode", "r-retry-1", ago(60), retryOKSteps},
		{"acme", "media", "transcode", "r-abort-1", ago(40), abortSteps},
		{"acme", "shop", "resize", hostileID, ago(20), okSteps},
		// in flight
		{"acme", "shop", "resize", "r-queued-1", ago(3), okSteps[:1]},
		{"acme", "shop", "resize", "r-running-1", ago(3), okSteps[:2]},
		{"acme", "media", "transcode", "r-retrying-1", ago(4), failSteps[:3]},
		{"acme", "media", "transcode", "r-terminating-1", ago(5), abortSteps[:3]},
		// another tenant
		{"globex", "shop", "resize", "g-ok-1", ago(80), okSteps},
		{"globex", "shop", "resize", "g-fail-1", ago(75), []step{
			{to: event.StateQueued},
			{to: event.StateRunning, attempt: 1, after: time.Second},
			{to: event.StateFailed, attempt: 1, after: 2 * time.Second, code: "OutOfMemory", msg: "killed"},
		}},
		// past the 72h retention: never shown
		{"acme", "shop", "resize", "r-old-1", now.Add(-80 * time.Hour), okSteps},
	}
	return evs
}

func transitionsOf(evs []*seedEvent) []transition {
	var out []transition
	for _, e := range evs {
		from := event.StateNone
		for i, s := range e.steps {
			out = append(out, transition{ev: e, seq: uint64(i + 1), from: from, step: s})
			from = s.to
		}
	}
	return out
}

// seeded is what the tests know about the data.
type seeded struct {
	now    time.Time
	events []*seedEvent
	trs    []transition
}

// seed creates the schema and delivers the data through both exporters.
func seed(t *testing.T, db *chtest.DB) seeded {
	t.Helper()
	ctx := context.Background()
	// Stored with a 100 h TTL, shown with the 72 h retention set below, so
	// that the event 80 h old is on disk and the dashboards must hide it.
	const storedFor = 100 * time.Hour
	if _, err := migrate.Up(ctx, db.Conn, migrate.Options{Database: db.Name, Retention: storedFor}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	now := time.Now().UTC()
	evs := seedEvents(now)
	trs := transitionsOf(evs)

	ours := statustraceexporter.NewFactory()
	oursCfg := ours.CreateDefaultConfig().(*statustraceexporter.Config)
	oursCfg.Endpoint, oursCfg.Database = db.DSN, db.Name
	oursCfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	oursCfg.BackOffConfig.Enabled = false
	oursCfg.Timeout = 2 * time.Minute
	oursCfg.Retention = storedFor

	contrib := clickhouseexporter.NewFactory()
	contribCfg := contrib.CreateDefaultConfig().(*clickhouseexporter.Config)
	contribCfg.Endpoint, contribCfg.Database = db.DSN, db.Name
	contribCfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	contribCfg.BackOffConfig.Enabled = false
	contribCfg.TimeoutSettings.Timeout = 2 * time.Minute
	contribCfg.AsyncInsert = false
	contribCfg.TTL = 72 * time.Hour

	ourExp := startExporter(t, ours, oursCfg)
	contribExp := startExporter(t, contrib, contribCfg)

	// Out of order: r-ok-1's RUNNING arrives after its FINISHED. Retries:
	// r-fail-1 and r-ok-2 are delivered twice.
	late := func(tr transition) bool { return tr.ev.id == "r-ok-1" && tr.to == event.StateRunning }
	var first, second []transition
	for _, tr := range trs {
		if late(tr) {
			second = append(second, tr)
		} else {
			first = append(first, tr)
		}
	}
	for _, tr := range trs {
		if tr.ev.id == "r-fail-1" || tr.ev.id == "r-ok-2" {
			second = append(second, tr)
		}
	}
	for i, batch := range [][]transition{first, second} {
		if err := ourExp.ConsumeTraces(ctx, statusTraces(batch)); err != nil {
			t.Fatalf("statustrace exporter, batch %d: %v", i, err)
		}
	}
	// Full traces go to otel_traces once: the contrib exporter keeps every
	// copy it is given (deduplication is not its job).
	if err := contribExp.ConsumeTraces(ctx, statusTraces(trs)); err != nil {
		t.Fatalf("contrib exporter: %v", err)
	}
	// The retention in force becomes 72 h (as after an operator lowered it
	// while old parts still wait for their TTL merge).
	if err := db.Conn.Exec(ctx, "INSERT INTO settings (name, value, updated_at) VALUES ('retention_seconds', '259200', now64(3) + 1)"); err != nil {
		t.Fatal(err)
	}
	// The expired event must be on disk for the retention filters to be
	// tested by it.
	var old uint64
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM transitions WHERE request_id = 'r-old-1'").Scan(&old); err != nil {
		t.Fatal(err)
	}
	if old == 0 {
		t.Fatal("r-old-1 was not stored: the retention filters would go untested")
	}
	return seeded{now: now, events: evs, trs: trs}
}

func startExporter(t *testing.T, f exporter.Factory, cfg component.Config) exporter.Traces {
	t.Helper()
	ctx := context.Background()
	exp, err := f.CreateTraces(ctx, exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatalf("start %s exporter: %v", f.Type(), err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// statusTraces renders transitions as the plugin's spans (plugin/README.md):
// one span per transition, ending at it, under the event's root span, which
// ends at the terminal state; IDs derived from the request ID and seq.
func statusTraces(trs []transition) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "statustrace")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(event.ScopeName)
	for _, tr := range trs {
		prev := tr.at()
		if tr.seq > 1 {
			prev = tr.ev.queued.Add(tr.ev.steps[tr.seq-2].after)
		}
		name := tr.from
		if tr.seq == 1 {
			name = tr.to
		}
		sp := ss.Spans().AppendEmpty()
		sp.SetName(name.String())
		sp.SetTraceID(pcommon.TraceID(spans.TraceID(tr.ev.id)))
		sp.SetSpanID(pcommon.SpanID(spans.TransitionSpanID(tr.ev.id, tr.seq)))
		sp.SetParentSpanID(pcommon.SpanID(spans.EventSpanID(tr.ev.id)))
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(prev))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(tr.at()))
		if tr.to.Terminal() {
			// As the plugin sends it: the exporter's end-to-end duration.
			sp.Attributes().PutInt(event.AttrEventStartUnixNano, tr.ev.queued.UnixNano())
		}
		putAttributes(sp.Attributes(), tr, event.RoleTransition)
		if tr.code != "" {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage(tr.msg)
		}
		if tr.to.Terminal() {
			root := ss.Spans().AppendEmpty()
			root.SetName(tr.ev.function)
			root.SetKind(ptrace.SpanKindConsumer)
			root.SetTraceID(pcommon.TraceID(spans.TraceID(tr.ev.id)))
			root.SetSpanID(pcommon.SpanID(spans.EventSpanID(tr.ev.id)))
			root.SetStartTimestamp(pcommon.NewTimestampFromTime(tr.ev.queued))
			root.SetEndTimestamp(pcommon.NewTimestampFromTime(tr.at()))
			putAttributes(root.Attributes(), tr, event.RoleEvent)
		}
	}
	return td
}

func putAttributes(a pcommon.Map, tr transition, role string) {
	a.PutStr(event.AttrTenant, tr.ev.tenant)
	a.PutStr(event.AttrNamespace, tr.ev.namespace)
	a.PutStr(event.AttrFunction, tr.ev.function)
	a.PutStr(event.AttrQualifier, "$LATEST")
	a.PutStr(event.AttrRequestID, tr.ev.id)
	a.PutStr(event.AttrInvokeType, "async")
	a.PutInt(event.AttrSeq, int64(tr.seq))
	a.PutInt(event.AttrAttempt, int64(tr.attempt))
	a.PutStr(event.AttrFromState, tr.from.String())
	a.PutStr(event.AttrToState, tr.to.String())
	a.PutStr(event.AttrNode, []string{"node-1", "node-2"}[tr.attempt%2])
	if tr.code != "" {
		a.PutStr(event.AttrErrorCode, tr.code)
		a.PutStr(event.AttrErrorMsg, tr.msg)
	}
	a.PutStr(event.AttrSpanRole, role)
}

// Brute-force answers from the seed model, for the checks.

// visible are the events the dashboards may show (inside retention).
func (s seeded) visible(keep func(*seedEvent) bool) []*seedEvent {
	var out []*seedEvent
	for _, e := range s.events {
		if e.queued.After(s.now.Add(-72*time.Hour)) && keep(e) {
			out = append(out, e)
		}
	}
	return out
}

func current(e *seedEvent) event.State { return e.steps[len(e.steps)-1].to }

// entered counts transitions into any of states among events.
func entered(evs []*seedEvent, states ...event.State) int {
	n := 0
	for _, e := range evs {
		for _, s := range e.steps {
			if slices.Contains(states, s.to) {
				n++
			}
		}
	}
	return n
}

func byTenant(tenant string) func(*seedEvent) bool {
	return func(e *seedEvent) bool { return e.tenant == tenant }
}

func find(evs []*seedEvent, id string) *seedEvent {
	for _, e := range evs {
		if e.id == id {
			return e
		}
	}
	return nil
}
