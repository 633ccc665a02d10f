// Package timewindow is the one rule for which span times ClickHouse can
// store and keep: not older than the retention (a row that its table's TTL
// would drop at the next merge, invisible to every reader), not further in
// the future than the clock skew we tolerate, and not so far in the future
// that the tables' partition and TTL arithmetic overflows (DateTime is
// seconds in a UInt32: a year-2200 time wraps and lands in the wrong
// partition, kept for decades and invisible). Both the statustrace exporter
// (status rows) and the collector's timewindow processor (spans bound for
// otel_traces) import it, so the two pipelines agree.
package timewindow

import (
	"errors"
	"fmt"
	"time"
)

// Verdict says whether a time may be written, and if not, why.
type Verdict uint8

const (
	OK       Verdict = iota
	Expired          // older than the retention
	Future           // later than now + the tolerated clock skew
	Overflow         // its TTL (time + retention) is beyond what DateTime holds
)

// String names the verdict as a drop reason (metric attribute value): a time
// too far in the future, by skew or by overflow, is a bad timestamp.
func (v Verdict) String() string {
	switch v {
	case OK:
		return "ok"
	case Expired:
		return "expired"
	default:
		return "bad_timestamp"
	}
}

// MaxDateTime is the last second ClickHouse's DateTime (UInt32 seconds)
// holds: 2106-02-07 06:28:15 UTC. The tables partition and expire on
// toDateTime(time) + retention, which must not pass it.
const MaxDateTime = 1<<32 - 1

// MaxSkew bounds the tolerated clock skew: a transition stamped more than a
// week ahead is a broken clock, not skew.
const MaxSkew = 7 * 24 * time.Hour

// Window is the configuration: how long rows are kept and how far ahead of
// this process's clock a time may be.
type Window struct {
	Retention time.Duration
	MaxSkew   time.Duration
}

// Validate checks the window without a clock.
func (w Window) Validate() error {
	var errs []error
	if w.Retention <= 0 {
		errs = append(errs, fmt.Errorf("retention %s: want a positive duration", w.Retention))
	} else if w.Retention >= MaxDateTime*time.Second/2 {
		errs = append(errs, fmt.Errorf("retention %s: want less than %s", w.Retention, MaxDateTime*time.Second/2))
	}
	if w.MaxSkew <= 0 || w.MaxSkew > MaxSkew {
		errs = append(errs, fmt.Errorf("max_future_skew %s: want more than 0 and at most %s", w.MaxSkew, MaxSkew))
	}
	return errors.Join(errs...)
}

// Bounds are a window fixed at one instant: check every span of a batch
// against the same bounds (computing them once per batch, not per span).
type Bounds struct {
	min, max, overflow int64 // Unix ns: oldest kept, newest accepted, first overflowing
}

// At fixes the window at now.
func (w Window) At(now time.Time) Bounds {
	n := now.UnixNano()
	b := Bounds{min: n - int64(w.Retention), max: n + int64(w.MaxSkew)}
	// toDateTime(time) + retention (whole seconds) must stay within
	// DateTime. time itself fits DateTime64(9): it is an int64 of ns.
	b.overflow = (MaxDateTime - int64(w.Retention/time.Second) + 1) * int64(time.Second)
	return b
}

// Check judges one time, in Unix nanoseconds.
func (b Bounds) Check(unixNano int64) Verdict {
	switch {
	case unixNano >= b.overflow:
		return Overflow
	case unixNano > b.max:
		return Future
	case unixNano < b.min:
		return Expired
	}
	return OK
}
