package host

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"sort"
	"syscall"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/plugin"
	pb "github.com/statustrace/statustrace/plugin/proto"
)

// maxBatchBytes cuts a batch before its gRPC message gets large (the plugin
// accepts up to plugin.MaxMessageBytes).
const maxBatchBytes = 4 << 20

// batch is one unit of acknowledgement. It stays in the loop's outstanding
// list, proto message and all, until the plugin acknowledges it, so that it
// can be re-sent as it is.
type batch struct {
	msg      pb.TransitionBatch
	items    []pb.Transition
	bytes    int
	gen      uint64    // stream generation it was sent on; 0 = not sent on the current stream
	sentAt   time.Time // when sent on the current stream
	attempts int       // failed (nacked) exports
	retryAt  time.Time // not to be re-sent before
}

func (b *batch) len() int { return len(b.msg.Transitions) }

// streamEvent is what a stream's goroutines tell the loop.
type streamEvent struct {
	gen uint64
	ack *pb.BatchAck
	err error
}

// conn is one running plugin process and its stream.
type conn struct {
	gen    uint64
	pid    int // 0 if unknown
	client *goplugin.Client
	rpc    plugin.Client
	stream plugin.Stream
	cancel context.CancelFunc
	sendCh chan *batch
	done   chan struct{} // closed at teardown: the goroutines stop reporting
	exited chan struct{} // writer and receiver both returned
}

// loop is the Reporter's background goroutine and the state it owns.
type loop struct {
	r      *Reporter
	cfg    Config
	events chan streamEvent
	conn   *conn
	gen    uint64

	nextID      uint64
	outstanding []*batch // ordered by id
	cur         *batch   // being filled
	curStart    time.Time
	free        []*batch

	restartAt    time.Time
	restartDelay time.Duration
	everStarted  bool
	lastAck      time.Time

	closing  bool
	closeCtx context.Context
	scratch  event.Transition
}

func newLoop(r *Reporter) *loop {
	return &loop{
		r:      r,
		cfg:    r.cfg,
		events: make(chan streamEvent, 2*r.cfg.MaxInflightBatches+8),
	}
}

// run is the background loop: it fills batches from the ring, sends them,
// handles acknowledgements, restarts the plugin and finally closes.
func (l *loop) run() {
	defer close(l.r.done)
	defer l.r.metrics.close()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		if l.closing && l.closeCtx.Err() != nil {
			l.abort()
			return
		}
		if l.conn == nil && !now.Before(l.restartAt) {
			ctx := context.Background()
			if l.closing {
				ctx = l.closeCtx
			}
			if err := l.connect(ctx); err != nil {
				l.cfg.Logger.Error("statustrace plugin restart failed", "error", err, "retry_in", l.restartDelay)
				l.scheduleRestart(now)
			}
		}
		l.fill(now)
		l.dispatch(now)
		if l.closing && l.idle() {
			l.finish()
			return
		}
		if l.conn != nil && l.unresponsive(now) {
			l.cfg.Logger.Error("statustrace plugin acknowledged nothing; restarting it", "ack_timeout", l.cfg.AckTimeout)
			l.teardown(now)
		}

		// Sleep until something happens: data (Report wakes us once the
		// current batch could be filled), an ack, a deadline, or Close.
		wait := l.nextDeadline(now).Sub(now)
		if wait < 0 {
			wait = 0
		}
		if len(l.outstanding) < l.cfg.MaxInflightBatches {
			// Nothing lingering: wake at the first transition, to start the
			// flush clock. Lingering: wake when the batch could be filled.
			need := uint64(1)
			if l.cur != nil {
				need = uint64(l.cfg.BatchSize - l.cur.len())
			}
			l.r.wakeAt.Store(l.r.ring.deq.Load() + need - 1)
			if l.r.ring.depth() >= need {
				wait = 0 // arrived while we were busy
			}
		}
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-l.r.wake:
			case ev := <-l.events:
				l.handle(ev, time.Now())
			case ctx := <-l.r.closeReq:
				l.closing, l.closeCtx = true, ctx
			case <-timer.C:
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		l.r.wakeAt.Store(math.MaxUint64)
		// Take every pending event without blocking.
		for more := true; more; {
			select {
			case ev := <-l.events:
				l.handle(ev, time.Now())
			case ctx := <-l.r.closeReq:
				l.closing, l.closeCtx = true, ctx
			default:
				more = false
			}
		}
	}
}

// fill moves transitions from the ring into batches while the window has room.
func (l *loop) fill(now time.Time) {
	for len(l.outstanding) < l.cfg.MaxInflightBatches {
		if l.cur == nil {
			if l.r.ring.depth() == 0 {
				return
			}
			l.cur = l.newBatch()
			l.curStart = now
		}
		for l.cur.len() < l.cfg.BatchSize && l.cur.bytes < maxBatchBytes && l.r.ring.pop(&l.scratch) {
			l.cur.add(&l.scratch)
		}
		full := l.cur.len() >= l.cfg.BatchSize || l.cur.bytes >= maxBatchBytes
		if !full && !l.closing && now.Sub(l.curStart) < l.cfg.FlushInterval {
			return // linger for more
		}
		if l.cur.len() == 0 {
			return
		}
		l.seal()
	}
}

func (l *loop) seal() {
	l.nextID++
	l.cur.msg.BatchId = l.nextID
	l.outstanding = append(l.outstanding, l.cur)
	l.r.unacked.Add(1)
	l.cur = nil
}

func (l *loop) newBatch() *batch {
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free = l.free[:n-1]
		return b
	}
	return &batch{
		items: make([]pb.Transition, l.cfg.BatchSize),
		msg:   pb.TransitionBatch{Transitions: make([]*pb.Transition, 0, l.cfg.BatchSize)},
	}
}

func (b *batch) add(t *event.Transition) {
	n := len(b.msg.Transitions)
	plugin.ToProto(&b.items[n], t)
	b.msg.Transitions = append(b.msg.Transitions, &b.items[n])
	b.bytes += 64 + len(t.Tenant) + len(t.Namespace) + len(t.Function) + len(t.Qualifier) + len(t.RequestID) +
		len(t.ErrorCode) + len(t.ErrorMessage) + len(t.InvokeType) + len(t.Node) + len(t.TraceParent)
}

func (l *loop) recycle(b *batch) {
	b.msg.Transitions = b.msg.Transitions[:0]
	b.msg.BatchId = 0
	b.bytes, b.gen, b.attempts = 0, 0, 0
	b.retryAt, b.sentAt = time.Time{}, time.Time{}
	if len(l.free) < l.cfg.MaxInflightBatches+1 {
		l.free = append(l.free, b)
	}
}

// dispatch sends every outstanding batch not yet sent on the current stream.
func (l *loop) dispatch(now time.Time) {
	if l.conn == nil {
		return
	}
	for _, b := range l.outstanding {
		if b.gen == l.conn.gen || now.Before(b.retryAt) {
			continue
		}
		b.gen, b.sentAt = l.conn.gen, now
		l.conn.sendCh <- b // capacity MaxInflightBatches: never blocks
		l.r.sent.Add(uint64(b.len()))
	}
}

func (l *loop) handle(ev streamEvent, now time.Time) {
	if l.conn == nil || ev.gen != l.conn.gen {
		return // from a stream already torn down
	}
	if ev.err != nil {
		l.cfg.Logger.Warn("statustrace plugin stream broke; restarting the plugin", "error", ev.err)
		l.teardown(now)
		return
	}
	if st := ev.ack.GetStats(); st != nil {
		l.r.setPluginStats(plugin.StatsFromProto(st))
	}
	if ev.ack.GetBatchId() == 0 {
		return // stats only
	}
	i := sort.Search(len(l.outstanding), func(i int) bool { return l.outstanding[i].msg.BatchId >= ev.ack.GetBatchId() })
	if i == len(l.outstanding) || l.outstanding[i].msg.BatchId != ev.ack.GetBatchId() {
		return // a duplicate ack
	}
	b := l.outstanding[i]
	if !ev.ack.GetOk() {
		b.attempts++
		b.gen = 0
		b.retryAt = now.Add(l.backoff(b.attempts))
		l.cfg.Logger.Warn("statustrace plugin could not export a batch; will re-send", "batch", b.msg.BatchId, "attempt", b.attempts, "error", ev.ack.GetError())
		return
	}
	l.lastAck = now
	l.restartDelay = 0 // the plugin works again
	l.outstanding = append(l.outstanding[:i], l.outstanding[i+1:]...)
	l.r.unacked.Add(-1)
	l.r.acked.Add(uint64(b.len()))
	if rej := ev.ack.GetRejected(); rej > 0 {
		l.r.rejected.Add(uint64(rej))
		l.cfg.Logger.Warn("statustrace plugin rejected invalid transitions", "count", rej)
	}
	l.recycle(b)
}

// unresponsive: batches wait on the stream but nothing was acknowledged for
// AckTimeout.
func (l *loop) unresponsive(now time.Time) bool {
	for _, b := range l.outstanding {
		if b.gen == l.conn.gen && now.Sub(b.sentAt) > l.cfg.AckTimeout && now.Sub(l.lastAck) > l.cfg.AckTimeout {
			return true
		}
	}
	return false
}

func (l *loop) idle() bool {
	return l.cur == nil && len(l.outstanding) == 0 && l.r.ring.depth() == 0
}

func (l *loop) nextDeadline(now time.Time) time.Time {
	d := now.Add(time.Second) // re-check ack timeouts and the like at least this often
	// With the window full nothing can be sealed or drained before an ack:
	// wait for the ack rather than spin on a passed flush deadline.
	if len(l.outstanding) < l.cfg.MaxInflightBatches {
		if l.cur != nil && l.cur.len() > 0 {
			d = minTime(d, l.curStart.Add(l.cfg.FlushInterval))
		} else if l.r.ring.depth() > 0 {
			d = now
		}
	}
	if l.conn == nil {
		d = minTime(d, l.restartAt)
	} else {
		for _, b := range l.outstanding {
			if b.gen != l.conn.gen {
				d = minTime(d, b.retryAt)
			}
		}
	}
	if l.closing {
		if dl, ok := l.closeCtx.Deadline(); ok {
			d = minTime(d, dl)
		}
	}
	return d
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (l *loop) backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt, 20)
	if d > l.cfg.MaxBackoff || d <= 0 {
		d = l.cfg.MaxBackoff
	}
	return d
}

func (l *loop) scheduleRestart(now time.Time) {
	if l.restartDelay == 0 {
		l.restartDelay = 50 * time.Millisecond
	} else {
		l.restartDelay = min(2*l.restartDelay, l.cfg.MaxBackoff)
	}
	l.restartAt = now.Add(l.restartDelay)
}

// connect launches the plugin, configures it and opens the stream.
func (l *loop) connect(ctx context.Context) error {
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		VersionedPlugins: plugin.VersionedPlugins(),
		Cmd:              exec.Command(l.cfg.PluginPath),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           l.cfg.Logger.Named("plugin"),
		StartTimeout:     l.cfg.StartTimeout,
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(plugin.MaxMessageBytes), grpc.MaxCallSendMsgSize(plugin.MaxMessageBytes))},
	})
	fail := func(err error) error {
		client.Kill()
		return fmt.Errorf("start statustrace plugin %s: %w", l.cfg.PluginPath, err)
	}
	proto, err := client.Client()
	if err != nil {
		return fail(err)
	}
	raw, err := proto.Dispense(plugin.Name)
	if err != nil {
		return fail(err)
	}
	pc, ok := raw.(plugin.Client)
	if !ok {
		return fail(fmt.Errorf("plugin returned %T, not a plugin.Client", raw))
	}
	pluginConfig, err := l.cfg.pluginMap() // checked by Validate
	if err != nil {
		return fail(err)
	}
	cctx, cancel := context.WithTimeout(ctx, l.cfg.StartTimeout)
	err = pc.Configure(cctx, pluginConfig)
	cancel()
	if err != nil {
		return fail(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	stream, err := pc.OpenStream(sctx)
	if err != nil {
		scancel()
		return fail(err)
	}
	l.gen++
	c := &conn{
		gen: l.gen, client: client, rpc: pc, stream: stream, cancel: scancel,
		sendCh: make(chan *batch, l.cfg.MaxInflightBatches),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	writerDone := make(chan struct{})
	go c.write(l.events, writerDone)
	go c.receive(l.events, writerDone)
	if rc := client.ReattachConfig(); rc != nil {
		c.pid = rc.Pid
		l.r.pid.Store(int64(rc.Pid))
	}
	if l.everStarted {
		l.r.restarts.Add(1)
	}
	l.everStarted = true
	l.conn = c
	l.lastAck = time.Now()
	return nil
}

func (c *conn) write(events chan<- streamEvent, writerDone chan<- struct{}) {
	defer close(writerDone)
	for b := range c.sendCh {
		if err := c.stream.Send(&b.msg); err != nil {
			select {
			case events <- streamEvent{gen: c.gen, err: fmt.Errorf("send batch: %w", err)}:
			case <-c.done:
			}
			for range c.sendCh { // drain until teardown closes it
			}
			return
		}
	}
}

func (c *conn) receive(events chan<- streamEvent, writerDone <-chan struct{}) {
	defer func() {
		<-writerDone
		close(c.exited)
	}()
	for {
		ack, err := c.stream.Recv()
		if err != nil {
			select {
			case events <- streamEvent{gen: c.gen, err: fmt.Errorf("receive ack: %w", err)}:
			case <-c.done:
			}
			return
		}
		select {
		case events <- streamEvent{gen: c.gen, ack: ack}:
		case <-c.done:
			return
		}
	}
}

// stop ends the stream's goroutines and waits for them, so that no batch is
// still being marshalled when it is re-sent or recycled.
func (c *conn) stop() {
	close(c.done)
	c.cancel()
	close(c.sendCh)
	<-c.exited
}

// forceKill ends a plugin that may not answer: go-plugin's Kill first asks
// the process to shut down over RPC without a deadline, which hangs on a
// hung process (and with it this loop), so the process gets SIGKILL first.
func (c *conn) forceKill() {
	if c.pid > 0 {
		_ = syscall.Kill(c.pid, syscall.SIGKILL)
	}
	c.client.Kill()
}

// teardown kills the plugin; everything outstanding will be re-sent to the
// next one.
func (l *loop) teardown(now time.Time) {
	c := l.conn
	l.conn = nil
	l.r.pid.Store(0)
	c.stop()
	c.forceKill()
	l.r.pluginGone()
	for _, b := range l.outstanding {
		b.gen = 0
		b.retryAt = time.Time{}
	}
	l.scheduleRestart(now)
}

// finish: everything was acknowledged; close the stream and stop the plugin
// gracefully.
func (l *loop) finish() {
	if l.conn == nil {
		return
	}
	c := l.conn
	l.conn = nil
	var errs []error
	if err := c.stream.CloseSend(); err != nil {
		errs = append(errs, fmt.Errorf("close stream: %w", err))
	}
	if st, err := c.rpc.Shutdown(l.closeCtx); err != nil {
		errs = append(errs, err)
	} else {
		l.r.setPluginStats(st)
	}
	c.stop()
	c.client.Kill()
	l.r.pid.Store(0)
	l.r.pluginGone()
	l.r.closeErr = errors.Join(errs...)
}

// abort: Close's deadline passed with transitions not acknowledged.
func (l *loop) abort() {
	if l.conn != nil {
		c := l.conn
		l.conn = nil
		c.stop()
		c.forceKill()
		l.r.pid.Store(0)
		l.r.pluginGone()
	}
	lost := l.r.ring.pushed() - l.r.acked.Load()
	l.r.closeErr = fmt.Errorf("close statustrace reporter: %w (%d transitions not acknowledged)", l.closeCtx.Err(), lost)
}
