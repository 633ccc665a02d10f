package spans

import (
	"fmt"
	"testing"

	"github.com/statustrace/statustrace/event"
)

// The exporter stores only span IDs that differ from event.TransitionSpanID,
// and the schema recomputes the rest: the plugin must derive exactly that.
func TestTransitionSpanIDMatchesContract(t *testing.T) {
	for i := 0; i < 1000; i++ {
		rid := fmt.Sprintf("req-%d-%x", i, i*7919)
		for _, seq := range []uint64{0, 1, 2, uint64(i), 1 << 40} {
			if got, want := TransitionSpanID(rid, seq), event.TransitionSpanID(rid, seq); [8]byte(got) != want {
				t.Fatalf("%s/%d: plugin %x, contract %x", rid, seq, got, want)
			}
		}
	}
}
