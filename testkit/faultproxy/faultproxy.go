// Package faultproxy is a TCP forwarder for tests that puts a fault between
// a client and a server: it passes traffic, refuses connections (nothing
// listens), hangs them (accepts, then never answers), or freezes them (open
// connections stay open and go silent, as with a server that stopped
// mid-request), switchable at any time. Tests use it to play an unreachable
// or frozen ClickHouse.
package faultproxy

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Mode is what the proxy does with connections.
type Mode uint8

const (
	Pass   Mode = iota // forward to the target
	Refuse             // close the listener: connections are refused
	Hang               // accept and hold connections, never answer
	// Freeze is Hang without cutting the open connections first: they stay
	// open and nothing more is forwarded either way, so a client in the
	// middle of a request waits for an answer that never comes (a stopped
	// or overloaded server) instead of seeing a reset. Leaving Freeze cuts
	// them, as every switch does.
	Freeze
)

// Proxy forwards a fixed local address to a target.
type Proxy struct {
	t      testing.TB
	Addr   string // where clients connect
	target string

	mu   sync.Mutex
	mode Mode
	// thaw is closed when the proxy leaves Freeze; forwarders of open
	// connections wait on it before writing.
	thaw  chan struct{}
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// New starts a proxy to target in Pass mode; it is closed when t ends.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, target: target, Addr: l.Addr().String(), conns: map[net.Conn]bool{}, ln: l, thaw: closedChan()}
	p.serve(l)
	t.Cleanup(func() { p.Set(Refuse) })
	return p
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Set switches the mode. Every open connection is cut, so that clients see
// the change at once (a pooled connection does not outlive a fault),
// except when switching to Freeze: then they stay open, silent.
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	wasFrozen := p.mode == Freeze
	p.mode = m
	if m == Freeze {
		if !wasFrozen {
			p.thaw = make(chan struct{})
		}
	} else {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]bool{}
		if wasFrozen {
			close(p.thaw)
		}
	}
	ln := p.ln
	if m == Refuse {
		p.ln = nil
	}
	p.mu.Unlock()
	if m == Refuse && ln != nil {
		ln.Close()
		p.wg.Wait()
		return
	}
	if m != Refuse && ln == nil {
		var err error
		for range 50 { // the port may linger briefly after a close
			if ln, err = net.Listen("tcp", p.Addr); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			p.t.Errorf("faultproxy: listen again on %s: %v", p.Addr, err)
			return
		}
		p.mu.Lock()
		p.ln = ln
		p.mu.Unlock()
		p.serve(ln)
	}
}

func (p *Proxy) serve(ln net.Listener) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			mode := p.mode
			p.conns[c] = true
			p.mu.Unlock()
			if mode == Hang || mode == Freeze {
				continue // held open until the next Set
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[u] = true
			p.mu.Unlock()
			go func() { p.forward(u, c); u.Close() }()
			go func() { p.forward(c, u); c.Close() }()
		}
	}()
}

// forward copies src to dst, holding each chunk while the proxy is frozen
// (a frozen connection is either thawed by a cut, or stays silent).
func (p *Proxy) forward(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			thaw := p.thaw
			p.mu.Unlock()
			<-thaw
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
