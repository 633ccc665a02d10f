package stackbin

import (
	"os"
	"path/filepath"
	"testing"
)

// One Set builds once: two calls return the same files, and Remove deletes
// them.
func TestBuildsOnceAndRemoves(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary; skipped with -short")
	}
	var s Set
	root, first := s.Get(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	_, again := s.Get(t)
	if first != again {
		t.Fatalf("second Get built again: %+v vs %+v", first, again)
	}
	info, err := os.Stat(first.Scheduler)
	if err != nil || info.Mode()&0o111 == 0 {
		t.Fatalf("scheduler binary %s: %v", first.Scheduler, err)
	}
	s.Remove()
	if _, err := os.Stat(first.Scheduler); !os.IsNotExist(err) {
		t.Fatalf("after Remove the binary is still there (%v)", err)
	}
}
