// Package demofuncs serves functions that behave in every way an async
// invocation can end, for the demo and the tests. Each is a POST endpoint
// keyed by the X-Request-Id header the scheduler sends:
//
//	/succeed                    200 at once
//	/fail                       500 at once
//	/flaky?failures=N           500 for the first N calls of a request ID (default 1), then 200
//	/slow?delay=D               200 after D (default 2s), or when the caller gives up
//	/until-terminated           runs until told to stop through /until-terminated/terminate
//	                            (then 200), or until the caller gives up
//	/until-terminated/terminate the scheduler's terminate notice for that request ID
//
// The server counts calls per request ID, so a test can prove an event ran
// exactly as often as it should.
package demofuncs

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Server is the demo functions' HTTP handler.
type Server struct {
	mux *http.ServeMux

	mu      sync.Mutex
	calls   map[string]int           // by request ID, every endpoint but terminate
	running map[string]chan struct{} // until-terminated calls waiting for their notice
}

// New returns a Server.
func New() *Server {
	s := &Server{
		mux:     http.NewServeMux(),
		calls:   map[string]int{},
		running: map[string]chan struct{}{},
	}
	s.mux.HandleFunc("POST /succeed", s.succeed)
	s.mux.HandleFunc("POST /fail", s.fail)
	s.mux.HandleFunc("POST /flaky", s.flaky)
	s.mux.HandleFunc("POST /slow", s.slow)
	s.mux.HandleFunc("POST /until-terminated", s.untilTerminated)
	s.mux.HandleFunc("POST /until-terminated/terminate", s.terminate)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Calls is how many times any function was called for a request ID.
func (s *Server) Calls(requestID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[requestID]
}

// Running is how many until-terminated calls are waiting now.
func (s *Server) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}

// count records a call and returns its number for the request ID (1-based).
func (s *Server) count(r *http.Request) int {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	rid := r.Header.Get("X-Request-Id")
	s.calls[rid]++
	return s.calls[rid]
}

func (s *Server) succeed(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	http.Error(w, "demo function failed on purpose", http.StatusInternalServerError)
}

func (s *Server) flaky(w http.ResponseWriter, r *http.Request) {
	n := s.count(r)
	failures := 1
	if v := r.URL.Query().Get("failures"); v != "" {
		f, err := strconv.Atoi(v)
		if err != nil || f < 0 {
			http.Error(w, "failures must be a non-negative integer", http.StatusBadRequest)
			return
		}
		failures = f
	}
	if n <= failures {
		http.Error(w, "flaky: call "+strconv.Itoa(n)+" fails", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) slow(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	delay := 2 * time.Second
	if v := r.URL.Query().Get("delay"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			http.Error(w, "delay must be a duration like 500ms", http.StatusBadRequest)
			return
		}
		delay = d
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		w.WriteHeader(http.StatusOK)
	case <-r.Context().Done():
	}
}

func (s *Server) untilTerminated(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	rid := r.Header.Get("X-Request-Id")
	stop := make(chan struct{})
	s.mu.Lock()
	s.running[rid] = stop
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.running[rid] == stop {
			delete(s.running, rid)
		}
		s.mu.Unlock()
	}()
	select {
	case <-stop:
		// A graceful stop: wind down and answer.
		w.WriteHeader(http.StatusOK)
	case <-r.Context().Done():
	}
}

func (s *Server) terminate(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	rid := r.Header.Get("X-Request-Id")
	if rid == "" {
		http.Error(w, "X-Request-Id is required", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stop, ok := s.running[rid]
	if !ok {
		http.Error(w, "no running call for this request ID", http.StatusNotFound)
		return
	}
	close(stop)
	delete(s.running, rid)
	w.WriteHeader(http.StatusAccepted)
}
