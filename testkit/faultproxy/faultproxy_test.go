package faultproxy

import (
	"bufio"
	"net"
	"testing"
	"time"
)

func echoServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					_, _ = c.Write([]byte(line))
				}
			}()
		}
	}()
	return l.Addr().String()
}

func roundTrip(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

func TestModes(t *testing.T) {
	p := New(t, echoServer(t))
	if err := roundTrip(p.Addr); err != nil {
		t.Fatalf("pass: %v", err)
	}
	p.Set(Refuse)
	if _, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		t.Fatal("refuse: connected")
	}
	p.Set(Hang)
	err := roundTrip(p.Addr)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("hang: want a timeout, got %v", err)
	}
	p.Set(Pass)
	if err := roundTrip(p.Addr); err != nil {
		t.Fatalf("pass again: %v", err)
	}
}

// Freeze keeps an open connection open and silent (a read times out, it is
// not reset), holds new ones the same way, and leaving it cuts them.
func TestFreeze(t *testing.T) {
	p := New(t, echoServer(t))
	c, err := net.DialTimeout("tcp", p.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	ping := func() error {
		_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		_, err := r.ReadString('\n')
		return err
	}
	if err := ping(); err != nil {
		t.Fatalf("pass: %v", err)
	}
	p.Set(Freeze)
	err = ping()
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("frozen open connection: want a timeout (still open, silent), got %v", err)
	}
	err = roundTrip(p.Addr)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("frozen new connection: want a timeout, got %v", err)
	}
	p.Set(Pass)
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("the frozen connection survived leaving Freeze: want it cut")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the frozen connection was not cut when leaving Freeze: %v", err)
	}
	if err := roundTrip(p.Addr); err != nil {
		t.Fatalf("pass again: %v", err)
	}
}
