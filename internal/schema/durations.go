package schema

import "math"

// Duration digests (schema version 4).
//
//   - Transitions gains two durations, filled by the exporter from the
//     span (0 = unknown): ColFromStateNS, the time the event spent in
//     from_state (span start to end; the plugin starts a transition span at
//     the previous transition), and ColEventNS, on a terminal transition the
//     time since the event's first transition.
//   - Durations (AggregatingMergeTree, ORDER BY (tenant, namespace,
//     function, qualifier, bucket, kind)): per minute and kind of duration, a
//     log-scale histogram whose every bin is a uniqExact set over
//     cityHash64(request_id, seq) — the same dedup as Stats: a re-delivered
//     transition counts once, however it was batched. Fed by MVDurations.
//     Read with uniqExactMapMerge(digest): Map(bin, transitions), merged over
//     any rows (one transition lives in one row), and DigestValue turns a bin
//     back into a duration with a relative error of at most DigestRelError.
//     A read is one row per (function, minute, kind): its cost does not grow
//     with the number of events.
const (
	Durations   = "durations_minute"
	MVDurations = "durations_minute_mv"

	ColFromStateNS = "from_state_ns" // UInt64 in transitions: ns spent in from_state; 0 unknown
	ColEventNS     = "event_ns"      // UInt64 in transitions: terminal rows, ns since the event's first transition; 0 otherwise

	ColDurationKind   = "kind"   // LowCardinality(String): one of the Duration* kinds
	ColDurationDigest = "digest" // AggregateFunction(uniqExactMap, Map(UInt16, UInt64))
)

// Kinds of durations (values of ColDurationKind).
const (
	DurationQueueWait  = "queue_wait"  // QUEUED -> RUNNING
	DurationRun        = "run"         // RUNNING -> the next state, per attempt
	DurationRetryDelay = "retry_delay" // RETRYING -> RUNNING
	DurationEndToEnd   = "end_to_end"  // first transition -> terminal state
)

// DurationKinds lists the kinds in display order.
var DurationKinds = []string{DurationQueueWait, DurationRun, DurationRetryDelay, DurationEndToEnd}

// DigestGamma is the ratio between consecutive histogram bins: bin b holds
// durations d (ns, d >= 1) with DigestGamma^b <= d < DigestGamma^(b+1).
const DigestGamma = 1.02

// DigestRelError bounds |DigestValue(b) - d| / d for every d in bin b:
// (gamma - 1) / (gamma + 1), just under 1%.
const DigestRelError = (DigestGamma - 1) / (DigestGamma + 1)

// DigestBinExpr is the SQL of the bin of a duration column in ns (>= 1).
func DigestBinExpr(col string) string {
	return "toUInt16(least(floor(log(toFloat64(" + col + ")) / log(1.02)), 65535))"
}

// DigestValue is the duration (ns) that stands for bin b: the point with the
// same relative distance to both ends of the bin.
func DigestValue(b uint16) float64 {
	return 2 * math.Pow(DigestGamma, float64(b)+1) / (DigestGamma + 1)
}

// DigestValueExpr is DigestValue in SQL, for a bin column or expression.
func DigestValueExpr(bin string) string {
	return "(2 * pow(1.02, " + bin + " + 1) / 2.02)"
}
