package spans

import (
	"context"
	"fmt"
	"github.com/statustrace/statustrace/plugin"
	"testing"
	"time"

	"github.com/statustrace/statustrace/testkit/otlptest"
)

// Reconfiguring while an export hangs gives up waiting for it after ctx;
// the Sink must stay usable afterwards: new batches are accepted and
// acknowledged, nothing panics (the old Sink reused a WaitGroup whose Wait
// had timed out, which panics once the hung export returns).
func TestReconfigureAfterTimedOutStop(t *testing.T) {
	r := otlptest.Start(t)
	s := newSink(t, grpcConfig(r))
	r.Stall()
	hung := make(chan result, 1)
	s.Submit(context.Background(), lifecycle("hung"), func(rej int, err error) { hung <- result{rej, err} })

	cfg := grpcConfig(r)
	cfg[plugin.KeyServiceName] = "reconfigured"
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = s.Configure(ctx, cfg) // may report the timed-out wait; must not wedge
	// Batches go in while the replaced pipeline's export still hangs, then
	// it returns.
	const n = 50
	done := make(chan result, n)
	go func() {
		time.Sleep(200 * time.Millisecond)
		r.Release()
	}()
	for i := range n {
		s.Submit(context.Background(), lifecycle(fmt.Sprintf("after-%d", i)), func(rej int, err error) { done <- result{rej, err} })
	}
	for i := range n {
		select {
		case res := <-done:
			if res.err != nil {
				t.Fatalf("batch after reconfigure: %v", res.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d batches after reconfigure never acknowledged", n-i, n)
		}
	}
	select {
	case <-hung:
	case <-time.After(30 * time.Second):
		t.Fatal("the batch of the replaced pipeline was never acknowledged")
	}
}
