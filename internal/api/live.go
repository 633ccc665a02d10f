package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/statustrace/statustrace/queries"
)

// ChangeSource finds events changed after a watermark; *queries.Store has it.
type ChangeSource interface {
	Changes(ctx context.Context, sc queries.Scope, f queries.ListFilter, sinceNs int64, limit int) ([]queries.Event, error)
}

// Hub runs the live streams: one poller per stream key (scope and filter),
// shared by every subscriber of that key, polling ClickHouse from a
// watermark. A transition can reach ClickHouse after a later one of another
// event, so each poll looks back Lag behind the newest change seen and
// drops what it has already sent (by request ID and seq): a change arrives
// at least once, and at most a Lag late is still caught.
type Hub struct {
	src      ChangeSource
	interval time.Duration
	lag      time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	streams map[string]*stream
	closed  chan struct{}
	once    sync.Once
}

// NewHub returns a hub polling src every interval (default 500ms).
func NewHub(src ChangeSource, interval time.Duration, log *slog.Logger) *Hub {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{src: src, interval: interval, lag: 10 * time.Second, log: log, streams: map[string]*stream{}, closed: make(chan struct{})}
}

// Close ends every stream (before an HTTP server's graceful shutdown,
// which would otherwise wait for them).
func (h *Hub) Close() { h.once.Do(func() { close(h.closed) }) }

// Done is closed by Close.
func (h *Hub) Done() <-chan struct{} { return h.closed }

type stream struct {
	key    string
	sc     queries.Scope
	f      queries.ListFilter
	subs   map[chan queries.Event]struct{}
	cancel context.CancelFunc
}

// subBuffer is how many changes a slow subscriber may lag behind before it
// is dropped (its client reconnects with Last-Event-ID and resumes).
const subBuffer = 1024

func streamKey(sc queries.Scope, f queries.ListFilter) string {
	b, _ := json.Marshal([]any{sc.Tenant, sc.Namespaces, f.Namespace, f.Function, f.Qualifier, f.RequestID, f.InvokeTypes, f.Statuses})
	return string(b)
}

// Subscribe returns the changes of sc's events matching f from now on, and
// a function to stop. The channel is closed when the subscriber falls too
// far behind, the hub closes or stop is called.
func (h *Hub) Subscribe(sc queries.Scope, f queries.ListFilter) (<-chan queries.Event, func()) {
	ch := make(chan queries.Event, subBuffer)
	key := streamKey(sc, f)
	h.mu.Lock()
	st := h.streams[key]
	if st == nil {
		ctx, cancel := context.WithCancel(context.Background())
		st = &stream{key: key, sc: sc, f: f, subs: map[chan queries.Event]struct{}{}, cancel: cancel}
		h.streams[key] = st
		go h.poll(ctx, st)
	}
	st.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() { h.unsubscribe(st, ch) }
}

func (h *Hub) unsubscribe(st *stream, ch chan queries.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := st.subs[ch]; !ok {
		return
	}
	delete(st.subs, ch)
	close(ch)
	if len(st.subs) == 0 {
		st.cancel()
		delete(h.streams, st.key)
	}
}

// Streams is the number of pollers running (one per distinct key).
func (h *Hub) Streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}

type seenEntry struct {
	seq uint64
	ns  int64
}

func (h *Hub) poll(ctx context.Context, st *stream) {
	wm := time.Now().UnixNano()
	seen := map[string]seenEntry{}
	tick := time.NewTicker(h.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.closed:
			h.mu.Lock()
			for ch := range st.subs {
				delete(st.subs, ch)
				close(ch)
			}
			delete(h.streams, st.key)
			h.mu.Unlock()
			return
		case <-tick.C:
		}
		since := wm - int64(h.lag)
		for {
			qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			evs, err := h.src.Changes(qctx, st.sc, st.f, since, queries.MaxChanges)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					h.log.Warn("live: poll failed", "err", err)
				}
				break
			}
			for _, e := range evs {
				ns := e.LastTime.UnixNano()
				if s, ok := seen[e.RequestID]; ok && s.seq >= e.LastSeq {
					continue
				}
				seen[e.RequestID] = seenEntry{seq: e.LastSeq, ns: ns}
				wm = max(wm, ns)
				h.broadcast(st, e)
			}
			if len(evs) < queries.MaxChanges {
				break
			}
			since = evs[len(evs)-1].LastTime.UnixNano() - 1
		}
		for id, s := range seen {
			if s.ns < wm-2*int64(h.lag) {
				delete(seen, id)
			}
		}
	}
}

func (h *Hub) broadcast(st *stream, e queries.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range st.subs {
		select {
		case ch <- e:
		default: // too far behind: drop it; its client resumes with Last-Event-ID
			delete(st.subs, ch)
			close(ch)
		}
	}
	if len(st.subs) == 0 {
		st.cancel()
		if h.streams[st.key] == st {
			delete(h.streams, st.key)
		}
	}
}

// Live is the hub behind the server's live streams (the console shares it).
func (s *Server) Live() *Hub { return s.hub }

// liveParams are the filters of a live stream: the list's, without order
// and paging.
var liveParams = paramSet{"namespace", "function", "qualifier", "request_id", "invoke_type", "status"}

func (s *Server) liveEvents(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery)
	if err == nil {
		err = liveParams.check(q)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if id := r.PathValue("request_id"); id != "" {
		if err := checkKey("request_id", id); err != nil {
			s.fail(w, r, err)
			return
		}
		q.Set("request_id", id)
	}
	f, err := parseListQuery(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.StreamEvents(w, r, principal(r.Context()), f)
}

// StreamEvents answers r with a text/event-stream of p's events matching f
// as they change: one `status` event per change, its id the change's Unix
// nanoseconds, its data the event as in the list. With Last-Event-ID the
// changes since that id (less the hub's look-back) are sent first, so a
// reconnecting client misses nothing; it may see a change twice (dedupe by
// request_id and last_seq).
func (s *Server) StreamEvents(w http.ResponseWriter, r *http.Request, p Principal, f queries.ListFilter) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, codeInternal, "streaming unsupported")
		return
	}
	if err := f.Validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	sc := p.Scope()
	var resume int64 = -1
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.fail(w, r, bad("Last-Event-ID", "%.30q is not an id this stream sent", v))
			return
		}
		resume = n
	}
	// Subscribe before the backfill, so nothing falls between the two.
	ch, stop := s.hub.Subscribe(sc, f)
	defer stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n\n")
	sent := map[string]uint64{}
	send := func(e queries.Event) bool {
		if seq, ok := sent[e.RequestID]; ok && seq >= e.LastSeq {
			return true
		}
		sent[e.RequestID] = e.LastSeq
		data, _ := json.Marshal(e)
		if _, err := fmt.Fprintf(w, "id: %d\nevent: status\ndata: %s\n\n", e.LastTime.UnixNano(), data); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	if resume >= 0 {
		since := resume - int64(s.hub.lag)
		for {
			ctx, cancel := s.queryCtx(r)
			evs, err := s.hub.src.Changes(ctx, sc, f, since, queries.MaxChanges)
			cancel()
			if err != nil {
				s.cfg.Log.Warn("live: resume failed", "request_id", requestID(r.Context()), "err", err)
				fmt.Fprintf(w, "event: error\ndata: {\"code\":%q,\"message\":\"resuming the stream failed (request %s)\"}\n\n", codeInternal, requestID(r.Context()))
				return
			}
			for _, e := range evs {
				if !send(e) {
					return
				}
			}
			if len(evs) < queries.MaxChanges {
				break
			}
			since = evs[len(evs)-1].LastTime.UnixNano() - 1
		}
	}
	fl.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-ch:
			if !ok {
				return // behind or closing: the client reconnects with Last-Event-ID
			}
			if !send(e) {
				return
			}
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
