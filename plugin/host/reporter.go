// Package host is what a scheduler imports to emit status transitions: it
// launches the statustrace plugin through go-plugin and gives the scheduler
// a Reporter whose Report never blocks and never fails.
//
//	r, err := host.Start(ctx, host.Config{PluginPath: "/usr/libexec/statustrace-plugin",
//		Plugin: plugin.Config{Endpoint: "collector:4317", Insecure: &insecure}})
//	...
//	r.Report(event.Transition{...}) // on every state change
//	...
//	r.Close(ctx)                    // flushes within ctx's deadline
package host

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/plugin"
)

// Reporter buffers transitions and ships them to the plugin in batches over
// one long-lived stream; see run for the background loop.
type Reporter struct {
	cfg  Config
	ring *ring

	// off is the set of functions whose tracing is switched off; it is
	// replaced, never modified, so Report reads it without a lock.
	off   atomic.Pointer[map[fnKey]struct{}]
	offMu sync.Mutex

	closed        atomic.Bool
	wakeAt        atomic.Uint64 // ring position at which Report wakes the loop
	wake          chan struct{}
	droppedFull   atomic.Uint64
	droppedClosed atomic.Uint64
	sent          atomic.Uint64
	acked         atomic.Uint64
	rejected      atomic.Uint64
	restarts      atomic.Uint64
	unacked       atomic.Int64 // batches outstanding
	pid           atomic.Int64

	// Counters of the plugin processes: those that are gone, summed, and
	// the running one's latest.
	pmu         sync.Mutex
	pgone, pcur plugin.Stats
	pspoolBytes uint64

	closeOnce sync.Once
	closeReq  chan context.Context
	done      chan struct{}
	closeErr  error
	metrics   *metrics
	loop      *loop
}

type fnKey struct{ namespace, function string }

// Stats are counters since Start, in transitions unless named otherwise.
type Stats struct {
	Reported   uint64 // accepted into the buffer
	Dropped    uint64 // not accepted: buffer full, or Report after Close (tracing switched off is not counted)
	Sent       uint64 // written to the plugin stream, re-sends included
	Acked      uint64 // acknowledged by the plugin: exported, or rejected as invalid
	Rejected   uint64 // acknowledged but dropped by the plugin as invalid
	Restarts   uint64 // plugin processes launched after the first
	QueueDepth uint64 // waiting in the buffer now
	Unacked    uint64 // batches sent or waiting to be sent, not yet acknowledged

	// What the plugin processes reported (summed over restarts): spooled,
	// exported, replayed, dropped by reason, and the spool's size now.
	plugin.Stats
}

// Start launches the plugin and the background loop. It fails if the
// configuration is invalid or the first launch of the plugin fails; later
// failures are handled by restarting the plugin.
func Start(ctx context.Context, cfg Config) (*Reporter, error) {
	r, err := newReporter(cfg)
	if err != nil {
		return nil, err
	}
	r.loop = newLoop(r)
	if err := r.loop.connect(ctx); err != nil {
		r.metrics.close()
		return nil, err
	}
	go r.loop.run()
	return r, nil
}

// newReporter builds a Reporter without a plugin or a loop.
func newReporter(cfg Config) (*Reporter, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("statustrace host config: %w", err)
	}
	r := &Reporter{
		cfg:      cfg,
		ring:     newRing(cfg.BufferSize),
		wake:     make(chan struct{}, 1),
		closeReq: make(chan context.Context, 1),
		done:     make(chan struct{}),
	}
	empty := map[fnKey]struct{}{}
	r.off.Store(&empty)
	r.wakeAt.Store(math.MaxUint64)
	m, err := newMetrics(cfg.MeterProvider, r)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	return r, nil
}

// Report hands one transition to the reporter. It never blocks and never
// fails: the transition is copied into the buffer, or dropped and counted
// when the buffer is full. Transitions of functions whose tracing is
// switched off are dropped without being counted.
func (r *Reporter) Report(t event.Transition) {
	if off := *r.off.Load(); len(off) > 0 {
		if _, ok := off[fnKey{t.Namespace, t.Function}]; ok {
			return
		}
	}
	if r.closed.Load() {
		r.droppedClosed.Add(1)
		return
	}
	pos, ok := r.ring.push(&t)
	if !ok {
		r.droppedFull.Add(1)
		return
	}
	if pos >= r.wakeAt.Load() {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// SetTracing switches status tracing of one function on or off at run time.
// Off: Report drops its transitions silently from the next call on.
func (r *Reporter) SetTracing(namespace, function string, on bool) {
	r.offMu.Lock()
	defer r.offMu.Unlock()
	cur := *r.off.Load()
	k := fnKey{namespace, function}
	if _, isOff := cur[k]; isOff == !on {
		return
	}
	next := make(map[fnKey]struct{}, len(cur)+1)
	for f := range cur {
		next[f] = struct{}{}
	}
	if on {
		delete(next, k)
	} else {
		next[k] = struct{}{}
	}
	r.off.Store(&next)
}

// Tracing reports whether status tracing of a function is on (the default).
func (r *Reporter) Tracing(namespace, function string) bool {
	_, off := (*r.off.Load())[fnKey{namespace, function}]
	return !off
}

// Stats returns the counters.
func (r *Reporter) Stats() Stats {
	u := r.unacked.Load()
	if u < 0 {
		u = 0
	}
	r.pmu.Lock()
	ps := addStats(r.pgone, r.pcur)
	ps.SpoolBytes = r.pspoolBytes
	r.pmu.Unlock()
	return Stats{
		Stats:      ps,
		Reported:   r.ring.pushed(),
		Dropped:    r.droppedFull.Load() + r.droppedClosed.Load(),
		Sent:       r.sent.Load(),
		Acked:      r.acked.Load(),
		Rejected:   r.rejected.Load(),
		Restarts:   r.restarts.Load(),
		QueueDepth: r.ring.depth(),
		Unacked:    uint64(u),
	}
}

// setPluginStats records the running plugin's latest counters.
func (r *Reporter) setPluginStats(st plugin.Stats) {
	r.pmu.Lock()
	r.pcur = st
	r.pspoolBytes = st.SpoolBytes
	r.pmu.Unlock()
}

// pluginGone folds the counters of a plugin process that stopped into the
// sum; its spool size stays the last known until the next one reports.
func (r *Reporter) pluginGone() {
	r.pmu.Lock()
	r.pgone = addStats(r.pgone, r.pcur)
	r.pcur = plugin.Stats{}
	r.pmu.Unlock()
}

func addStats(a, b plugin.Stats) plugin.Stats {
	return plugin.Stats{
		Spooled: a.Spooled + b.Spooled, Exported: a.Exported + b.Exported, Replayed: a.Replayed + b.Replayed,
		DroppedSpoolFull: a.DroppedSpoolFull + b.DroppedSpoolFull, DroppedCorrupt: a.DroppedCorrupt + b.DroppedCorrupt,
		DroppedRefused: a.DroppedRefused + b.DroppedRefused, RefusedSpans: a.RefusedSpans + b.RefusedSpans,
		ExportFailures: a.ExportFailures + b.ExportFailures,
	}
}

// PluginPID is the process ID of the running plugin, 0 while none runs.
func (r *Reporter) PluginPID() int { return int(r.pid.Load()) }

// ErrClosed is returned by a second Close.
var ErrClosed = errors.New("statustrace reporter already closed")

// Close stops accepting transitions, sends and waits for the acknowledgement
// of everything accepted, and stops the plugin. If ctx ends first, the plugin
// is stopped anyway and the error says how many transitions were not
// acknowledged.
func (r *Reporter) Close(ctx context.Context) error {
	first := false
	r.closeOnce.Do(func() {
		first = true
		r.closed.Store(true)
		r.closeReq <- ctx
	})
	if !first {
		<-r.done
		return ErrClosed
	}
	select {
	case <-r.done:
		return r.closeErr
	case <-ctx.Done():
		// The loop sees the same deadline and stops the plugin on its own.
		return fmt.Errorf("close statustrace reporter: %w (%d transitions not acknowledged)",
			ctx.Err(), r.ring.pushed()-r.acked.Load())
	}
}
