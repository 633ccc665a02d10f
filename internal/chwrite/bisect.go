package chwrite

import "context"

// Write writes items [lo, hi) of a batch as one insert.
type Write func(ctx context.Context, lo, hi int) error

// Reject is told about each item that ClickHouse refused on its own.
type Reject func(i int, err error)

// Bisect writes the n items of a batch. The happy path is one call of
// write(0, n). When a range fails permanently it is split in halves and
// each half is written on its own, down to single items: every item that
// can be written is, and each item that fails alone is passed to reject.
// A transient error stops the work and is returned: the caller retries the
// whole batch later (re-writing what was already written, which the
// schemas make idempotent), so nothing is rejected twice for one outcome
// as long as the caller counts rejections only when Bisect returns nil.
//
// Cost: a batch with k bad items takes at most about 2·k·log2(n/k) + 1
// inserts.
func Bisect(ctx context.Context, n int, write Write, reject Reject) error {
	if n == 0 {
		return nil
	}
	return bisect(ctx, 0, n, write, reject)
}

func bisect(ctx context.Context, lo, hi int, write Write, reject Reject) error {
	err := write(ctx, lo, hi)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil || Classify(err) == Transient {
		return err
	}
	if hi-lo == 1 {
		reject(lo, err)
		return nil
	}
	mid := lo + (hi-lo)/2
	if err := bisect(ctx, lo, mid, write, reject); err != nil {
		return err
	}
	return bisect(ctx, mid, hi, write, reject)
}
