package schema

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/statustrace/statustrace/event"
)

// Duration digests (schema version 4).
//
//   - Transitions gains two durations, filled by the exporter from the
//     span (0 = unknown): ColFromStateNS, the time the event spent in
//     from_state (span start to end; the plugin starts a transition span at
//     the previous transition), and ColEventNS, on a terminal transition the
//     time since the event's first transition.
//   - DurationsV4 (AggregatingMergeTree, ORDER BY (tenant, namespace,
//     function, qualifier, bucket, kind), dropped by schema version 7, which
//     keeps the same histograms in Stats, see DurationKeyExpr): per minute
//     and kind of duration, a
//     log-scale histogram whose every bin is a uniqExact set over
//     cityHash64(request_id, seq) — the same dedup as Stats: a re-delivered
//     transition counts once, however it was batched. Fed by MVDurationsV4.
//     Read with uniqExactMapMerge(digest): Map(bin, transitions), merged over
//     any rows (one transition lives in one row), and DigestValue turns a bin
//     back into a duration with a relative error of at most DigestRelError.
//     A read is one row per (function, minute, kind): its cost does not grow
//     with the number of events.
const (
	DurationsV4   = "durations_minute"    // schema versions 4-6
	MVDurationsV4 = "durations_minute_mv" // schema versions 4-6

	ColFromStateNS = "from_state_ns" // UInt64 in transitions: ns spent in from_state; 0 unknown
	ColEventNS     = "event_ns"      // UInt64 in transitions: terminal rows, ns since the event's first transition; 0 otherwise

	ColDurationKind = "kind" // duration_digests' output: one of the Duration* kinds

	// ColDurationKey (UInt32 in transitions, schema version 12) is the
	// row's duration key (DurationKey), which the exporter sends instead
	// of ColFromStateNS and ColEventNS; its DEFAULT computes it from those
	// two for writers that still send them. Like them it is read only by
	// the per-minute view, on insert, and expires at once (column TTL).
	ColDurationKey = "duration_key"
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

// Duration keys (schema version 7). Stats maps each transition's hash to a
// UInt32 key that packs the durations the transition ends, so one set of
// 64-bit hashes serves the counts and the histograms (before, stats_minute
// and durations_minute each kept a hash set: 8 + 6 bytes per transition):
//
//	bits 25-26  the step kind: DurationCode (queue_wait, run, retry_delay), 0 none
//	bit  24     the transition ends the event (an end_to_end duration)
//	bits 12-23  the step duration's digest bin
//	bits  0-11  the end-to-end duration's digest bin
//
// A stats row's count is the number of its hashes; a kind's histogram is
// the number of keys per bin over the keys that carry it
// (DurationPartsExpr). A bin fits 12 bits: the longest duration a UInt64
// of ns can hold is bin 2,242 (3 days: 1,677); the key caps it at
// durationBinMax anyway.
const (
	durationKindShift = 25
	durationEndBit    = 24
	durationStepShift = 12
	durationBinMax    = 1<<durationStepShift - 1
)

// durationSteps are the kinds a single transition's step can end, in code
// order (code = index + 1); DurationEndToEnd has the flag bit instead.
var durationSteps = []string{DurationQueueWait, DurationRun, DurationRetryDelay}

// DurationCode is the code of a step kind in a duration key (1, 2, 3), and
// false for a kind that is not a step (end_to_end, unknown).
func DurationCode(kind string) (int, bool) {
	i := slices.Index(durationSteps, kind)
	return i + 1, i >= 0
}

// DurationKeyExpr is the SQL of a transition's duration key. stepKind is an
// expression giving its DurationCode (0: the transition ends no step),
// stepNS the step's duration in ns, terminal a condition true when the
// transition ends the event, endNS the event's age in ns then. A duration
// of 0 is unknown and left out. The arguments are expressions of our own
// templates, never user input.
func DurationKeyExpr(stepKind, stepNS, terminal, endNS string) string {
	step := "(" + stepKind + " != 0 AND " + stepNS + " > 0)"
	end := "(" + terminal + " AND " + endNS + " > 0)"
	bin := func(ns string) string {
		return "least(" + DigestBinExpr("greatest("+ns+", 1)") + ", " + strconv.Itoa(durationBinMax) + ")"
	}
	return "bitOr(bitOr(bitShiftLeft(toUInt32(if(" + step + ", " + stepKind + ", 0)), " + strconv.Itoa(durationKindShift) + "), " +
		"bitShiftLeft(toUInt32(" + end + "), " + strconv.Itoa(durationEndBit) + ")), " +
		"bitOr(bitShiftLeft(toUInt32(if(" + step + ", " + bin(stepNS) + ", 0)), " + strconv.Itoa(durationStepShift) + "), " +
		"toUInt32(if(" + end + ", " + bin(endNS) + ", 0))))"
}

// DurationPartsExpr is the SQL of the durations a key (an expression of
// type UInt32) carries: an Array(Tuple(String, UInt16)) of (kind, bin),
// empty for a transition that ends none.
func DurationPartsExpr(key string) string {
	codes := make([]string, len(durationSteps))
	kinds := make([]string, len(durationSteps))
	for i, k := range durationSteps {
		codes[i] = strconv.Itoa(i + 1)
		kinds[i] = "'" + k + "'"
	}
	return "arrayFilter(p -> p.1 != '', [" +
		"(transform(toUInt8(bitShiftRight(" + key + ", " + strconv.Itoa(durationKindShift) + ")), [" + strings.Join(codes, ", ") + "], [" + strings.Join(kinds, ", ") + "], ''), " +
		"toUInt16(bitAnd(bitShiftRight(" + key + ", " + strconv.Itoa(durationStepShift) + "), " + strconv.Itoa(durationBinMax) + "))), " +
		"(if(bitTest(" + key + ", " + strconv.Itoa(durationEndBit) + "), '" + DurationEndToEnd + "', ''), toUInt16(bitAnd(" + key + ", " + strconv.Itoa(durationBinMax) + ")))])"
}

// stepRules say which step kind a transition ends, first match first:
// QUEUED -> RUNNING ends the queue wait, RUNNING -> anything ends a run
// (an attempt), RETRYING -> RUNNING ends the retry delay. to is
// event.StateNone where any state matches. StepCode and StepCodeExpr
// both read this one table.
var stepRules = []struct {
	from, to event.State
	kind     string
}{
	{event.StateQueued, event.StateRunning, DurationQueueWait},
	{event.StateRunning, event.StateNone, DurationRun},
	{event.StateRetrying, event.StateRunning, DurationRetryDelay},
}

// StepCode is the DurationCode of the step a transition from -> to ends,
// 0 when it ends none.
func StepCode(from, to event.State) int {
	for _, r := range stepRules {
		if from == r.from && (r.to == event.StateNone || to == r.to) {
			c, _ := DurationCode(r.kind)
			return c
		}
	}
	return 0
}

// StepCodeExpr is StepCode in SQL over the state columns fromCol and toCol
// (names of our own templates, never user input).
func StepCodeExpr(fromCol, toCol string) string {
	var b strings.Builder
	b.WriteString("multiIf(")
	for _, r := range stepRules {
		c, _ := DurationCode(r.kind)
		b.WriteString(fromCol + " = " + event.SQLLiteral(r.from.String()))
		if r.to != event.StateNone {
			b.WriteString(" AND " + toCol + " = " + event.SQLLiteral(r.to.String()))
		}
		b.WriteString(", " + strconv.Itoa(c) + ", ")
	}
	b.WriteString("0)")
	return b.String()
}

// DurationKey is DurationKeyExpr in Go: the key of a transition whose step
// code is stepCode (StepCode; 0 none) and took stepNS, and that, when
// terminal, ends an event endNS old. The exporter computes it (schema
// version 12), so an insert does not evaluate the expression per row; the
// column's DEFAULT is DurationKeyExpr, for writers that send the two
// durations instead. TestDurationKeyMatchesSQL holds the two to the same
// values on a real engine.
func DurationKey(stepCode int, stepNS uint64, terminal bool, endNS uint64) uint32 {
	var k uint32
	if stepCode != 0 && stepNS > 0 {
		k |= uint32(stepCode)<<durationKindShift | uint32(digestBinKey(stepNS))<<durationStepShift
	}
	if terminal && endNS > 0 {
		k |= 1<<durationEndBit | uint32(digestBinKey(endNS))
	}
	return k
}

// digestBinKey is DigestBinExpr capped at durationBinMax, as the key
// stores it: floor(log(ns) / log(1.02)) in float64, the operations
// ClickHouse runs.
func digestBinKey(ns uint64) uint16 {
	b := math.Floor(math.Log(float64(max(ns, 1))) / math.Log(DigestGamma))
	return uint16(min(b, 65535, durationBinMax))
}
