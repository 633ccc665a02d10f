package riverstatus_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/scheduler/riverstatus"
	"github.com/statustrace/statustrace/scheduler/riverstatus/riverstatustest"
)

type recorder = riverstatustest.Recorder

// step is a transition reduced to what a test pins down.
type step struct {
	From, To event.State
	Seq      uint64
	Attempt  uint32
}

func steps(ts []event.Transition) []step {
	out := make([]step, len(ts))
	for i, t := range ts {
		out[i] = step{t.From, t.To, t.Seq, t.Attempt}
	}
	return out
}

// waitTerminal waits until the event has a terminal transition.
func waitTerminal(t *testing.T, r *recorder, requestID string) []event.Transition {
	t.Helper()
	require.Eventually(t, func() bool {
		ts := r.Of(requestID)
		return len(ts) > 0 && ts[len(ts)-1].To.Terminal()
	}, 20*time.Second, 5*time.Millisecond, "no terminal transition for %s: %v", requestID, r.Of(requestID))
	return r.Of(requestID)
}

type testArgs struct {
	Mode     string `json:"mode"`
	FailTill int    `json:"fail_till"`
}

func (testArgs) Kind() string { return "riverstatus_test" }

type testWorker struct {
	river.WorkerDefaults[testArgs]
}

func (testWorker) Work(ctx context.Context, job *river.Job[testArgs]) error {
	switch job.Args.Mode {
	case "ok":
		return nil
	case "fail":
		if job.Attempt <= job.Args.FailTill || job.Args.FailTill == 0 {
			return codedErr{code: "Boom", msg: fmt.Sprintf("attempt %d failed", job.Attempt)}
		}
		return nil
	case "block":
		<-ctx.Done()
		return ctx.Err()
	case "panic":
		panic("worker exploded")
	case "terminate":
		if !riverstatus.Terminating(ctx) {
			return errors.New("Terminating reported nothing")
		}
		if riverstatus.Terminating(ctx) {
			return errors.New("Terminating reported twice")
		}
		return riverstatus.Stop(event.StateAborted, riverstatus.CodeTerminated, errors.New("terminated on request"))
	}
	return fmt.Errorf("unknown mode %q", job.Args.Mode)
}

type codedErr struct{ code, msg string }

func (e codedErr) Error() string     { return e.msg }
func (e codedErr) ErrorCode() string { return e.code }

// fixedRetry retries after a fixed delay.
type fixedRetry time.Duration

func (d fixedRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Duration(d)) }

type harness struct {
	client  *river.Client[*sql.Tx]
	tracker *riverstatus.Tracker
	rec     *recorder
}

func newHarness(t *testing.T, retry time.Duration) *harness {
	t.Helper()
	ctx := context.Background()
	dsn := "file:" + filepath.Join(t.TempDir(), "river.db") + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })

	driver := riversqlite.New(db)
	migrator, err := rivermigrate.New(driver, nil)
	require.NoError(t, err)
	_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	require.NoError(t, err)

	rec := &recorder{}
	tracker := riverstatus.New(riverstatus.Options{Reporter: rec, Node: "test-node"})
	workers := river.NewWorkers()
	river.AddWorker(workers, testWorker{})
	client, err := river.NewClient(driver, &river.Config{
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		Middleware:        []rivertype.Middleware{tracker},
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		RetryPolicy:       riverstatus.RetryPolicy{Policy: fixedRetry(retry)},
		TestOnly:          true,
		Workers:           workers,
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.StopAndCancel(ctx)
	})
	return &harness{client: client, tracker: tracker, rec: rec}
}

func (h *harness) insert(t *testing.T, rid string, args testArgs, mod func(*riverstatus.Event), opts *river.InsertOpts) *rivertype.JobRow {
	t.Helper()
	ev := riverstatus.Event{Tenant: "t1", Namespace: "ns", Function: "fn", Qualifier: "$LATEST", RequestID: rid, InvokeType: "async", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	if mod != nil {
		mod(&ev)
	}
	res, err := riverstatus.Insert(context.Background(), h.tracker, h.client, args, ev, opts)
	require.NoError(t, err)
	return res.Job
}

func (h *harness) waitJob(t *testing.T, id int64, state rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	var row *rivertype.JobRow
	require.Eventually(t, func() bool {
		var err error
		row, err = h.client.JobGet(context.Background(), id)
		return err == nil && row.State == state
	}, 20*time.Second, 5*time.Millisecond)
	return row
}

const (
	N = event.StateNone
	Q = event.StateQueued
	R = event.StateRunning
	Y = event.StateRetrying
	T = event.StateTerminating
)

func TestSuccess(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	job := h.insert(t, "ok-1", testArgs{Mode: "ok"}, nil, &river.InsertOpts{MaxAttempts: 3})
	ts := waitTerminal(t, h.rec, "ok-1")
	assert.Equal(t, []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, event.StateFinished, 7, 1}}, steps(ts))

	first := ts[0]
	assert.Equal(t, event.Keys{Tenant: "t1", Namespace: "ns", Function: "fn", Qualifier: "$LATEST", RequestID: "ok-1"}, first.Keys)
	assert.Equal(t, "test-node", first.Node)
	assert.Equal(t, "async", first.InvokeType)
	assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", first.TraceParent)
	for i := 1; i < len(ts); i++ {
		assert.GreaterOrEqual(t, ts[i].TimeUnixNano, ts[i-1].TimeUnixNano)
	}
	row := h.waitJob(t, job.ID, rivertype.JobStateCompleted)
	assert.Equal(t, event.StateFinished, riverstatus.StateOf(row))
}

func TestRetriesThenSuccess(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	h.insert(t, "flaky-1", testArgs{Mode: "fail", FailTill: 2}, nil, &river.InsertOpts{MaxAttempts: 3})
	ts := waitTerminal(t, h.rec, "flaky-1")
	assert.Equal(t, []step{
		{N, Q, 1, 0},
		{Q, R, 5, 1}, {R, Y, 7, 1},
		{Y, R, 9, 2}, {R, Y, 11, 2},
		{Y, R, 13, 3}, {R, event.StateFinished, 15, 3},
	}, steps(ts))
	assert.Equal(t, "Boom", ts[2].ErrorCode)
	assert.Equal(t, "attempt 1 failed", ts[2].ErrorMessage)
	assert.Empty(t, ts[6].ErrorCode)
}

func TestFailsAfterLastAttempt(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	job := h.insert(t, "fail-1", testArgs{Mode: "fail"}, nil, &river.InsertOpts{MaxAttempts: 2})
	ts := waitTerminal(t, h.rec, "fail-1")
	assert.Equal(t, []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, Y, 7, 1}, {Y, R, 9, 2}, {R, event.StateFailed, 11, 2}}, steps(ts))
	assert.Equal(t, "attempt 2 failed", ts[4].ErrorMessage)
	row := h.waitJob(t, job.ID, rivertype.JobStateDiscarded)
	assert.Equal(t, event.StateFailed, riverstatus.StateOf(row))
}

func TestPanicCountsAsFailedAttempt(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	h.insert(t, "panic-1", testArgs{Mode: "panic"}, nil, &river.InsertOpts{MaxAttempts: 2})
	ts := waitTerminal(t, h.rec, "panic-1")
	assert.Equal(t, []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, Y, 7, 1}, {Y, R, 9, 2}, {R, event.StateFailed, 11, 2}}, steps(ts))
	assert.Equal(t, riverstatus.CodePanic, ts[4].ErrorCode)
	assert.Equal(t, "worker exploded", ts[4].ErrorMessage)
}

func TestExpiredBeforeFirstAttempt(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	job := h.insert(t, "exp-0", testArgs{Mode: "ok"}, func(ev *riverstatus.Event) {
		ev.ExpiresAt = time.Now().Add(-time.Second).UnixNano()
	}, nil)
	ts := waitTerminal(t, h.rec, "exp-0")
	assert.Equal(t, []step{{N, Q, 1, 0}, {Q, event.StateExpired, 4, 0}}, steps(ts))
	assert.Equal(t, riverstatus.CodeExpired, ts[1].ErrorCode)
	row := h.waitJob(t, job.ID, rivertype.JobStateCancelled)
	assert.Equal(t, event.StateExpired, riverstatus.StateOf(row))
}

func TestExpiresWhileRunning(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	job := h.insert(t, "exp-run", testArgs{Mode: "block"}, func(ev *riverstatus.Event) {
		ev.ExpiresAt = time.Now().Add(300 * time.Millisecond).UnixNano()
	}, &river.InsertOpts{MaxAttempts: 5})
	ts := waitTerminal(t, h.rec, "exp-run")
	assert.Equal(t, []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, event.StateExpired, 7, 1}}, steps(ts))
	row := h.waitJob(t, job.ID, rivertype.JobStateCancelled)
	assert.Equal(t, event.StateExpired, riverstatus.StateOf(row), "expired jobs are not retried")
}

func TestRetryAfterMaxAgeExpiresOnTime(t *testing.T) {
	// The retry policy asks for an hour; the event expires in 300ms, so the
	// retry is pulled in and the event is EXPIRED while waiting.
	h := newHarness(t, time.Hour)
	h.insert(t, "exp-wait", testArgs{Mode: "fail"}, func(ev *riverstatus.Event) {
		ev.ExpiresAt = time.Now().Add(300 * time.Millisecond).UnixNano()
	}, &river.InsertOpts{MaxAttempts: 5})
	ts := waitTerminal(t, h.rec, "exp-wait")
	assert.Equal(t, []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, Y, 7, 1}, {Y, event.StateExpired, 8, 1}}, steps(ts))
}

func TestGracefulTerminateFromWorker(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	job := h.insert(t, "term-1", testArgs{Mode: "terminate"}, nil, &river.InsertOpts{MaxAttempts: 3})
	ts := waitTerminal(t, h.rec, "term-1")
	assert.Equal(t, []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, T, 6, 1}, {T, event.StateAborted, 7, 1}}, steps(ts))
	assert.Equal(t, riverstatus.CodeTerminated, ts[3].ErrorCode)
	row := h.waitJob(t, job.ID, rivertype.JobStateCancelled)
	assert.Equal(t, event.StateAborted, riverstatus.StateOf(row))
}

func TestRemoteCancelOfRunningJob(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	job := h.insert(t, "cancel-run", testArgs{Mode: "block"}, nil, &river.InsertOpts{MaxAttempts: 3})
	require.Eventually(t, func() bool { return len(h.rec.Of("cancel-run")) == 2 }, 10*time.Second, 5*time.Millisecond)
	_, err := h.client.JobCancel(context.Background(), job.ID)
	require.NoError(t, err)
	ts := waitTerminal(t, h.rec, "cancel-run")
	assert.Equal(t, []step{{N, Q, 1, 0}, {Q, R, 5, 1}, {R, event.StateAborted, 7, 1}}, steps(ts))
}

func TestAbortWhileWaiting(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	job := h.insert(t, "cancel-wait", testArgs{Mode: "ok"}, nil, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	row, err := h.client.JobCancel(context.Background(), job.ID)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateCancelled, row.State)
	h.tracker.Aborted(row, riverstatus.CodeTerminated, "terminated on request")
	ts := h.rec.Of("cancel-wait")
	assert.Equal(t, []step{{N, Q, 1, 0}, {Q, event.StateAborted, 4, 0}}, steps(ts))
}

func TestUntracedEventReportsNothing(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	job := h.insert(t, "quiet", testArgs{Mode: "ok"}, func(ev *riverstatus.Event) { ev.Untraced = true }, nil)
	h.waitJob(t, job.ID, rivertype.JobStateCompleted)
	assert.Empty(t, h.rec.Of("quiet"))
}

func TestJobWithoutEventIsLeftAlone(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	res, err := h.client.Insert(context.Background(), testArgs{Mode: "ok"}, nil)
	require.NoError(t, err)
	h.waitJob(t, res.Job.ID, rivertype.JobStateCompleted)
	assert.Zero(t, h.rec.Count())
}

func TestUniqueDuplicateReportsNoSecondQueued(t *testing.T) {
	h := newHarness(t, 10*time.Millisecond)
	opts := &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour), UniqueOpts: river.UniqueOpts{ByArgs: true}}
	ev := riverstatus.Event{RequestID: "dup"}
	_, err := riverstatus.Insert(context.Background(), h.tracker, h.client, testArgs{Mode: "ok"}, ev, opts)
	require.NoError(t, err)
	res, err := riverstatus.Insert(context.Background(), h.tracker, h.client, testArgs{Mode: "ok"}, ev, opts)
	require.NoError(t, err)
	assert.True(t, res.UniqueSkippedAsDuplicate)
	assert.Len(t, h.rec.Of("dup"), 1)
}

func TestSeqGrowsAlongEveryPath(t *testing.T) {
	type tr struct {
		attempt int
		phase   riverstatus.Phase
	}
	paths := [][]tr{
		{{0, riverstatus.PhaseStart}, {0, riverstatus.PhaseIdle}},                                                                // QUEUED, ABORTED/EXPIRED
		{{0, riverstatus.PhaseStart}, {1, riverstatus.PhaseStart}, {1, riverstatus.PhaseTerminating}, {1, riverstatus.PhaseEnd}}, // ... ABORTED
		{{0, riverstatus.PhaseStart}, {1, riverstatus.PhaseStart}, {1, riverstatus.PhaseEnd}, {2, riverstatus.PhaseStart}, {2, riverstatus.PhaseEnd}},
		{{0, riverstatus.PhaseStart}, {1, riverstatus.PhaseStart}, {1, riverstatus.PhaseEnd}, {1, riverstatus.PhaseIdle}}, // RETRYING then EXPIRED/ABORTED
	}
	for _, p := range paths {
		for i := 1; i < len(p); i++ {
			assert.Greater(t, riverstatus.Seq(p[i].attempt, p[i].phase), riverstatus.Seq(p[i-1].attempt, p[i-1].phase))
		}
	}
	assert.Equal(t, uint64(1), riverstatus.Seq(0, riverstatus.PhaseStart), "seq starts at 1")
}

func TestMetadataKeepsOtherKeys(t *testing.T) {
	md, err := riverstatus.Metadata(riverstatus.Event{RequestID: "r"}, []byte(`{"mine":42}`))
	require.NoError(t, err)
	assert.Contains(t, string(md), `"mine":42`)
	ev, ok := riverstatus.FromJob(&rivertype.JobRow{Metadata: md})
	require.True(t, ok)
	assert.Equal(t, "r", ev.RequestID)

	_, err = riverstatus.Metadata(riverstatus.Event{}, nil)
	assert.Error(t, err, "an event needs a request ID")
	_, err = riverstatus.Metadata(riverstatus.Event{RequestID: "r"}, []byte(`[1]`))
	assert.Error(t, err)
	_, ok = riverstatus.FromJob(&rivertype.JobRow{Metadata: []byte(`{"statustrace":"x"}`)})
	assert.False(t, ok)
}

func TestLongErrorMessagesAreBounded(t *testing.T) {
	rec := &recorder{}
	tr := riverstatus.New(riverstatus.Options{Reporter: rec})
	md, err := riverstatus.Metadata(riverstatus.Event{RequestID: "long"}, nil)
	require.NoError(t, err)
	msg := strings.Repeat("é", event.MaxErrorMessageBytes) // 2 bytes each
	tr.Aborted(&rivertype.JobRow{Metadata: md, State: rivertype.JobStateCancelled}, "x", msg)
	got := rec.Of("long")[0].ErrorMessage
	assert.LessOrEqual(t, len(got), event.MaxErrorMessageBytes)
	assert.True(t, strings.HasPrefix(msg, got))
	assert.Equal(t, 0, len(got)%2, "no rune is cut in half")
}

func TestErrorText(t *testing.T) {
	err := riverstatus.Stop(event.StateAborted, "x", errors.New("terminated on request (graceful)"))
	assert.Equal(t, "terminated on request (graceful)", riverstatus.ErrorText(err.Error()))
	assert.Equal(t, "HTTP 500: boom", riverstatus.ErrorText("HTTP 500: boom"))
}
