package freeport_test

import (
	"net"
	"testing"

	"github.com/statustrace/statustrace/internal/freeport"
)

// TestAddrsAreDistinctAndFree: every address of one call differs from the
// others and can be listened on.
func TestAddrsAreDistinctAndFree(t *testing.T) {
	addrs := freeport.Addrs(t, 8)
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s returned twice in %v", a, addrs)
		}
		seen[a] = true
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("listen on %s: %v", a, err)
		}
		l.Close()
	}
}
