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
//
// A transient error stops the work and is returned with done, the number
// of leading items whose outcome is final (written or rejected): the
// caller retries items [done, n) later, and counts the first done now,
// so that nothing is counted twice and a long bisection that runs into its
// deadline still makes progress. Items are written left to right, so the
// final ones are always a prefix.
//
// Cost: a batch with k bad items takes at most about 2·k·log2(n/k) + 1
// inserts.
func Bisect(ctx context.Context, n int, write Write, reject Reject) (done int, err error) {
	if n == 0 {
		return 0, nil
	}
	return bisect(ctx, 0, n, write, reject)
}

func bisect(ctx context.Context, lo, hi int, write Write, reject Reject) (int, error) {
	err := write(ctx, lo, hi)
	if err == nil {
		return hi, nil
	}
	if ctx.Err() != nil || Classify(err) == Transient {
		return lo, err
	}
	if hi-lo == 1 {
		reject(lo, err)
		return hi, nil
	}
	mid := lo + (hi-lo)/2
	if done, err := bisect(ctx, lo, mid, write, reject); err != nil {
		return done, err
	}
	return bisect(ctx, mid, hi, write, reject)
}
