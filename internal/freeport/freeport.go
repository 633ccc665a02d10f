// Package freeport finds free loopback TCP ports for the processes that
// tests, the demo and the shard run start. All ports of one call are held
// until all are found: two separate calls can return the same port once the
// first is released, and two processes then race for it.
package freeport

import (
	"fmt"
	"net"
	"strconv"
)

// Ports returns n distinct free loopback TCP ports. They are released
// before return, so another process could still take one; the child that
// then cannot listen fails clearly.
func Ports(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// TB is the part of testing.TB the helpers use (this package is also built
// into binaries, which should not import testing).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Addrs returns n distinct free loopback addresses ("127.0.0.1:port") or
// fails the test.
func Addrs(t TB, n int) []string {
	t.Helper()
	ports, err := Ports(n)
	if err != nil {
		t.Fatalf("%v", err)
	}
	addrs := make([]string, n)
	for i, p := range ports {
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return addrs
}

// Addr returns one free loopback address or fails the test.
func Addr(t TB) string {
	t.Helper()
	return Addrs(t, 1)[0]
}
