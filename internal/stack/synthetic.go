package stack

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/plugin"
	"github.com/statustrace/statustrace/plugin/host"
)

// SyntheticOptions configure a synthetic scheduler node: it reports the
// transitions of short events (QUEUED → RUNNING → FINISHED) at a steady
// rate through the real plugin host and plugin binary, as a second
// scheduler node would, to top up load that one scheduler cannot produce.
type SyntheticOptions struct {
	PluginPath string // statustrace-plugin
	OTLPGRPC   string // the collector's OTLP/gRPC address
	Keys       event.Keys
	Node       string
	Rate       float64       // transitions per second
	RunFor     time.Duration // how long each event stays RUNNING; default 50ms
}

// Synthetic is a running synthetic node.
type Synthetic struct {
	rep      *host.Reporter
	cancel   context.CancelFunc
	done     chan struct{}
	reported atomic.Int64
}

// StartSynthetic launches the plugin and starts reporting.
func StartSynthetic(ctx context.Context, o SyntheticOptions) (*Synthetic, error) {
	if o.RunFor == 0 {
		o.RunFor = 50 * time.Millisecond
	}
	if o.Rate <= 0 {
		return nil, fmt.Errorf("synthetic node: rate %g is not positive", o.Rate)
	}
	insecure := true
	rep, err := host.Start(ctx, host.Config{
		PluginPath: o.PluginPath,
		Plugin:     plugin.Config{Endpoint: o.OTLPGRPC, Insecure: &insecure, ServiceName: "synthetic-scheduler"},
	})
	if err != nil {
		return nil, fmt.Errorf("synthetic node: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	s := &Synthetic{rep: rep, cancel: cancel, done: make(chan struct{})}
	go s.run(rctx, o)
	return s, nil
}

// run starts rate/3 events per second; each is QUEUED at its start,
// RUNNING one tick later and FINISHED RunFor after that. A pipeline of
// ticks keeps the transition rate steady.
func (s *Synthetic) run(ctx context.Context, o SyntheticOptions) {
	defer close(s.done)
	const tick = 10 * time.Millisecond
	finishAfter := max(1, int(o.RunFor/tick))
	ring := make([][]event.Keys, finishAfter+2) // events that started RUNNING per tick
	var queued []event.Keys                     // QUEUED in the previous tick
	start := time.Now()
	var started int64
	t := time.NewTicker(tick)
	defer t.Stop()
	report := func(k event.Keys, seq uint64, attempt uint32, from, to event.State) {
		s.rep.Report(event.Transition{Keys: k, Seq: seq, Attempt: attempt, From: from, To: to,
			TimeUnixNano: time.Now().UnixNano(), InvokeType: "async", Node: o.Node})
		s.reported.Add(1)
	}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// FINISHED for the events that began running finishAfter ticks ago.
		slot := i % len(ring)
		done := ring[(i+len(ring)-finishAfter)%len(ring)]
		for _, k := range done {
			report(k, 6, 1, event.StateRunning, event.StateFinished)
		}
		ring[(i+len(ring)-finishAfter)%len(ring)] = done[:0]
		// RUNNING for last tick's QUEUED.
		for _, k := range queued {
			report(k, 5, 1, event.StateQueued, event.StateRunning)
		}
		ring[slot] = append(ring[slot], queued...)
		// New events, so that the total keeps to rate/3 events per second.
		due := int64(time.Since(start).Seconds()*o.Rate/3) - started
		queued = queued[:0]
		for range due {
			started++
			k := o.Keys
			k.RequestID = o.Node + "-" + strconv.FormatInt(started, 10)
			report(k, 1, 0, event.StateNone, event.StateQueued)
			queued = append(queued, k)
		}
	}
}

// Reported is how many transitions were handed to the reporter.
func (s *Synthetic) Reported() int64 { return s.reported.Load() }

// Stats are the reporter's counters (Dropped must stay 0).
func (s *Synthetic) Stats() host.Stats { return s.rep.Stats() }

// Stop stops reporting and closes the reporter (flush, acks, plugin exit).
func (s *Synthetic) Stop(ctx context.Context) error {
	s.cancel()
	<-s.done
	return s.rep.Close(ctx)
}
