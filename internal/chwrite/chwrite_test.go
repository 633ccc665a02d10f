package chwrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want Class
	}{
		{"too many partitions in one block", &clickhouse.Exception{Code: 252, Message: "Too many partitions for single INSERT block (more than 100). The limit is controlled by 'max_partitions_per_insert_block' setting."}, Permanent},
		{"too many parts (merges behind)", &clickhouse.Exception{Code: 252, Message: "Too many parts (3001 with average size of 1.00 KiB) in table 't'. Merges are processing significantly slower than inserts"}, Transient},
		{"wrapped", fmt.Errorf("send batch: %w", &clickhouse.Exception{Code: 241, Message: "Memory limit (total) exceeded"}), Transient},
		{"cannot parse", &clickhouse.Exception{Code: 27, Message: "Cannot parse input"}, Permanent},
		{"value out of range", &clickhouse.Exception{Code: 321, Message: "out of range"}, Permanent},
		{"unknown table", &clickhouse.Exception{Code: 60, Message: "Table x.transitions does not exist"}, Transient},
		{"read-only replica", &clickhouse.Exception{Code: 242, Message: "Table is in readonly mode"}, Transient},
		// Codes as the server numbers them (ch-go's constants are generated
		// from ClickHouse's list): a quota per interval and a full disk pass
		// later; a query over its byte limit never does.
		{"quota exceeded", &clickhouse.Exception{Code: int32(proto.ErrQuotaExceeded), Message: "Quota for user 'otel' for 3600s has been exceeded"}, Transient},
		{"disk full", &clickhouse.Exception{Code: int32(proto.ErrNotEnoughSpace), Message: "Cannot reserve 1.00 MiB, not enough space"}, Transient},
		{"too many bytes in one query", &clickhouse.Exception{Code: int32(proto.ErrTooManyBytes), Message: "Limit for rows or bytes to read exceeded"}, Permanent},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, Transient},
		{"timeout", context.DeadlineExceeded, Transient},
		{"EOF", io.ErrUnexpectedEOF, Transient},
		{"driver refused a value", DataError(errors.New("converting string to UInt64")), Permanent},
	} {
		if got := Classify(c.err); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if Code(fmt.Errorf("x: %w", &clickhouse.Exception{Code: 252})) != 252 || Code(io.EOF) != 0 {
		t.Error("Code")
	}
}

// fakeTable refuses any insert that contains a bad item, as ClickHouse
// refuses a whole block for one bad row, and records what it stored.
type fakeTable struct {
	bad      map[int]bool
	failOnce map[int]bool // a transient failure the first time a range holds this item
	stored   []int
	inserts  int
}

func (f *fakeTable) write(_ context.Context, lo, hi int) error {
	f.inserts++
	for i := lo; i < hi; i++ {
		if f.bad[i] {
			return &clickhouse.Exception{Code: 252, Message: "Too many partitions for single INSERT block"}
		}
	}
	for i := lo; i < hi; i++ {
		if f.failOnce[i] {
			delete(f.failOnce, i)
			return &clickhouse.Exception{Code: 241, Message: "Memory limit exceeded"}
		}
	}
	for i := lo; i < hi; i++ {
		f.stored = append(f.stored, i)
	}
	return nil
}

func TestBisectWritesEveryGoodItem(t *testing.T) {
	for _, bad := range [][]int{nil, {0}, {999}, {3, 4, 5}, {1, 500, 501, 998}} {
		f := &fakeTable{bad: map[int]bool{}}
		for _, b := range bad {
			f.bad[b] = true
		}
		var rejected []int
		if done, err := Bisect(context.Background(), 1000, f.write, func(i int, err error) {
			if Code(err) != 252 {
				t.Errorf("reject %d with %v", i, err)
			}
			rejected = append(rejected, i)
		}); err != nil || done != 1000 {
			t.Fatalf("done %d, %v", done, err)
		}
		if !slices.Equal(rejected, bad) && !(len(bad) == 0 && len(rejected) == 0) {
			t.Errorf("bad %v: rejected %v", bad, rejected)
		}
		slices.Sort(f.stored)
		if len(f.stored) != 1000-len(bad) || slices.ContainsFunc(f.stored, func(i int) bool { return f.bad[i] }) {
			t.Errorf("bad %v: stored %d items", bad, len(f.stored))
		}
		if len(bad) == 0 && f.inserts != 1 {
			t.Errorf("happy path took %d inserts, want 1", f.inserts)
		}
		if len(bad) == 1 && f.inserts > 2*10+1 {
			t.Errorf("one bad item of 1000 took %d inserts", f.inserts)
		}
	}
}

// A transient error in the middle of a bisection stops it and says how far
// the outcome is final; retrying the rest finishes with the same outcome
// as one uninterrupted run.
func TestBisectStopsOnTransient(t *testing.T) {
	f := &fakeTable{bad: map[int]bool{7: true}, failOnce: map[int]bool{900: true}}
	var rejected []int
	done, err := Bisect(context.Background(), 1000, f.write, func(i int, _ error) { rejected = append(rejected, i) })
	if Classify(err) != Transient || err == nil {
		t.Fatalf("want the transient error, got %v", err)
	}
	if done <= 7 || done > 900 {
		t.Fatalf("done %d: the prefix before the failure (past the bad item 7, not past 900) is final", done)
	}
	slices.Sort(f.stored)
	if len(f.stored) != done-1 || !slices.Equal(rejected, []int{7}) {
		t.Fatalf("final prefix: stored %d, rejected %v", len(f.stored), rejected)
	}
	// The caller retries only [done, 1000).
	offset := done
	rest, err := Bisect(context.Background(), 1000-offset, func(ctx context.Context, lo, hi int) error {
		return f.write(ctx, lo+offset, hi+offset)
	}, func(i int, _ error) { rejected = append(rejected, i+offset) })
	if err != nil || rest != 1000-offset {
		t.Fatal(err)
	}
	slices.Sort(f.stored)
	if !slices.Equal(rejected, []int{7}) || len(f.stored) != 999 || slices.Compact(f.stored)[998] != 999 {
		t.Fatalf("after the retry: rejected %v, stored %d", rejected, len(f.stored))
	}
}
