// Package faultproxy is a TCP forwarder for tests that puts a fault between
// a client and a server: it passes traffic, refuses connections (nothing
// listens), or hangs them (accepts, then never answers), switchable at any
// time. Tests use it to play an unreachable or frozen ClickHouse.
package faultproxy

import (
	"io"
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
)

// Proxy forwards a fixed local address to a target.
type Proxy struct {
	t      testing.TB
	Addr   string // where clients connect
	target string

	mu    sync.Mutex
	mode  Mode
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
	p := &Proxy{t: t, target: target, Addr: l.Addr().String(), conns: map[net.Conn]bool{}, ln: l}
	p.serve(l)
	t.Cleanup(func() { p.Set(Refuse) })
	return p
}

// Set switches the mode. Every open connection is cut, so that clients see
// the change at once (a pooled connection does not outlive a fault).
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	p.mode = m
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
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
			if mode == Hang {
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
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}
