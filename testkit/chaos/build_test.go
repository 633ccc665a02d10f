package chaos

import (
	"os"
	"testing"

	"github.com/statustrace/statustrace/testkit/stackbin"
)

// built are the binaries the chaos test runs, built once.
var built stackbin.Set

func TestMain(m *testing.M) {
	code := m.Run()
	built.Remove()
	os.Exit(code)
}
