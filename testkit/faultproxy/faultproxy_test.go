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
