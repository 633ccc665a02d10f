package querytest

import (
	"context"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/statustrace/statustrace/event"
)

// The standard data set of the read-side tests: two tenants, duplicates,
// out-of-order arrival, an event past the retention window, and hostile
// strings in every key.
const (
	TenantA = "tenant-a"
	TenantB = "tenant-b"

	// Hostile is SQL that would widen a naively concatenated filter.
	Hostile = "' OR 1=1 --"
	// HostileNamespace mixes quotes, a backslash escape and a newline.
	HostileNamespace = "ns\\' \"x\"\n'y' OR ''='"
	// HostileQualifier ends in a backslash, which escapes a closing quote.
	HostileQualifier = `v\1\`
	// HostileRequestID is a request ID with quotes, backslashes and a newline.
	HostileRequestID = "req' OR '1'='1 \\\\ \n-- {tenant:String}"
	// HostileErrorCode is an error code made of quote and backslash.
	HostileErrorCode = `E'\`

	// VisibleRetention is the retention the fixture stores in settings,
	// shorter than the tables' TTL: OldRequestID is stored but not visible.
	VisibleRetention = 48 * time.Hour
)

// Request IDs of the fixture. Tenant B reuses FinishedID for an event of its
// own, so a lookup that leaked across tenants would show the wrong status.
const (
	FinishedID = "req-finished" // A: FINISHED, delivered twice
	FailedID   = "req-failed"   // A: FAILED after a retry, terminal row first
	RunningID  = "req-running"  // A: RUNNING
	AbortedID  = "req-aborted"  // A: ABORTED, namespace "other", function "thumbnail"
	ExpiredID  = "req-expired"  // A: EXPIRED (public FAILED)
	OldID      = "req-old"      // A: FINISHED 60h ago: past the visible retention
	BOnlyID    = "req-b-only"   // B: FINISHED
)

// Big is a 10 kB filter value (longer than any stored key).
var Big = strings.Repeat(Hostile+"\\\n", 10*1024/len(Hostile+"\\\n")+1)

// Fixture is the standard data set anchored at Base.
type Fixture struct {
	Now  time.Time // when it was made
	Base time.Time // start of the first event: Now - 2h, whole minute
	// Batches are inserted in order, each as one insert.
	Batches [][]Row
}

// Keys of an event of the fixture.
func keys(tenant, ns, fn, q, id string) event.Keys {
	return event.Keys{Tenant: tenant, Namespace: ns, Function: fn, Qualifier: q, RequestID: id}
}

// NewFixture builds the data set relative to now.
func NewFixture(now time.Time) *Fixture {
	now = now.UTC()
	base := now.Add(-2 * time.Hour).Truncate(time.Minute)
	sec := time.Second
	R := event.StateRunning

	finished := History(keys(TenantA, "default", "resize", "LATEST", FinishedID), "async", base,
		Step{To: R, After: 10 * sec}, Step{To: event.StateFinished, After: 20 * sec})
	failed := History(keys(TenantA, "default", "resize", "v1", FailedID), "timer", base.Add(time.Minute),
		Step{To: R, After: 10 * sec},
		Step{To: event.StateRetrying, After: 5 * sec, Code: "HandlerError", Message: "boom 1"},
		Step{To: R, After: 30 * sec, NewTry: true},
		Step{To: event.StateFailed, After: 5 * sec, Code: "HandlerError", Message: "boom 2"})
	running := History(keys(TenantA, "default", "resize", "LATEST", RunningID), "async", base.Add(2*time.Minute),
		Step{To: R, After: 10 * sec})
	aborted := History(keys(TenantA, "other", "thumbnail", "LATEST", AbortedID), "async", base.Add(3*time.Minute),
		Step{To: R, After: 10 * sec}, Step{To: event.StateTerminating, After: 20 * sec}, Step{To: event.StateAborted, After: 5 * sec})
	expired := History(keys(TenantA, "default", "resize", "LATEST", ExpiredID), "async", base.Add(4*time.Minute),
		Step{To: event.StateExpired, After: 60 * sec, Code: "MaxAgeExceeded", Message: "queued too long"})
	old := History(keys(TenantA, "default", "resize", "LATEST", OldID), "async", now.Add(-60*time.Hour),
		Step{To: R, After: 10 * sec}, Step{To: event.StateFinished, After: 20 * sec})
	hostileMsg := strings.Repeat(Hostile+"\\'\n", event.MaxErrorMessageBytes/len(Hostile+"\\'\n"))
	hostile := History(keys(TenantA, HostileNamespace, Hostile, HostileQualifier, HostileRequestID), Hostile, base.Add(6*time.Minute),
		Step{To: R, After: 10 * sec}, Step{To: event.StateFailed, After: 10 * sec, Code: HostileErrorCode, Message: hostileMsg})

	bFinished := History(keys(TenantB, "default", "resize", "LATEST", FinishedID), "async", base.Add(7*time.Minute),
		Step{To: R, After: sec}, Step{To: event.StateFailed, After: sec, Code: "OOM", Message: "out of memory"})
	bOnly := History(keys(TenantB, "default", "resize", "LATEST", BOnlyID), "async", base.Add(8*time.Minute),
		Step{To: R, After: sec}, Step{To: event.StateFinished, After: sec})

	var batch1, batch2 []Row
	batch1 = append(batch1, finished...)
	batch1 = append(batch1, failed[len(failed)-1]) // the terminal row arrives first
	batch1 = append(batch1, running...)
	batch1 = append(batch1, aborted...)
	batch1 = append(batch1, bFinished...)
	batch2 = append(batch2, failed[:len(failed)-1]...)
	batch2 = append(batch2, expired...)
	batch2 = append(batch2, old...)
	batch2 = append(batch2, hostile...)
	batch2 = append(batch2, bOnly...)
	batch2 = append(batch2, running[0]) // a duplicate inside a later batch
	batch3 := append([]Row{}, finished...)

	return &Fixture{Now: now, Base: base, Batches: [][]Row{batch1, batch2, batch3}}
}

// Load sets the visible retention and inserts the batches.
func (f *Fixture) Load(ctx context.Context, conn driver.Conn) error {
	if err := SetVisibleRetention(ctx, conn, VisibleRetention); err != nil {
		return err
	}
	for _, b := range f.Batches {
		if err := Insert(ctx, conn, b); err != nil {
			return err
		}
	}
	return nil
}

// VisibleA lists tenant A's visible events by start time.
var VisibleA = []string{FinishedID, FailedID, RunningID, AbortedID, ExpiredID, HostileRequestID}
