// Package chwrite is how statustrace writes to ClickHouse without letting a
// batch block a queue: it classifies errors as transient (retry the batch
// later: the same request can succeed) or permanent (this data can never be
// written), and bisects a batch that failed permanently so that every good
// row is written and only the rows that fail on their own are dropped.
//
// The statustrace exporter and the collector's otel_traces exporter both
// use it, so one table decides for both.
package chwrite

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Class is what to do about an error.
type Class uint8

const (
	// Transient: retry the whole batch later (network, timeouts, memory,
	// too many parts, read-only replica, missing table or grants an
	// operator can fix, ...). Nothing is dropped.
	Transient Class = iota
	// Permanent: ClickHouse understood the request and refused its data;
	// sending it again cannot succeed. Bisect, write the good rows, drop
	// and count the rest.
	Permanent
)

func (c Class) String() string {
	if c == Permanent {
		return "permanent"
	}
	return "transient"
}

// transientCodes are ClickHouse exception codes that say nothing about the
// data: the server, the cluster or the schema is not ready, and the same
// request can succeed later. Every other exception is a refusal of this
// request (a parse or type error, a value out of range, a constraint, too
// many partitions in one block) and permanent. A missing table, column or
// grant is transient on purpose: dropping every batch because the schema
// or the user is broken would lose everything an operator could still
// save by fixing it.
var transientCodes = map[int32]string{
	3:    "UNEXPECTED_END_OF_FILE",
	16:   "NO_SUCH_COLUMN_IN_TABLE",
	32:   "ATTEMPT_TO_READ_AFTER_EOF",
	33:   "CANNOT_READ_ALL_DATA",
	47:   "UNKNOWN_IDENTIFIER",
	60:   "UNKNOWN_TABLE",
	81:   "UNKNOWN_DATABASE",
	159:  "TIMEOUT_EXCEEDED",
	164:  "READONLY",
	192:  "UNKNOWN_USER",
	193:  "WRONG_PASSWORD",
	194:  "REQUIRED_PASSWORD",
	195:  "IP_ADDRESS_NOT_ALLOWED",
	198:  "DNS_ERROR",
	202:  "TOO_MANY_SIMULTANEOUS_QUERIES",
	203:  "NO_FREE_CONNECTION",
	209:  "SOCKET_TIMEOUT",
	210:  "NETWORK_ERROR",
	214:  "TOO_MANY_BYTES", // the quota kind, per interval
	225:  "NO_ZOOKEEPER",
	236:  "ABORTED",
	241:  "MEMORY_LIMIT_EXCEEDED",
	242:  "TABLE_IS_READ_ONLY",
	252:  "TOO_MANY_PARTS", // but see tooManyPartitions
	279:  "ALL_CONNECTION_TRIES_FAILED",
	285:  "TOO_FEW_LIVE_REPLICAS",
	286:  "UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE",
	290:  "LIMIT_EXCEEDED",
	319:  "UNKNOWN_STATUS_OF_INSERT",
	341:  "UNFINISHED",
	373:  "SESSION_IS_LOCKED",
	394:  "QUERY_WAS_CANCELLED",
	425:  "SYSTEM_ERROR",
	439:  "CANNOT_SCHEDULE_TASK",
	497:  "ACCESS_DENIED",
	516:  "AUTHENTICATION_FAILED",
	999:  "KEEPER_EXCEPTION",
	1002: "UNKNOWN_EXCEPTION",
}

// tooManyPartitions tells code 252's permanent form (one INSERT block
// spanning more partitions than max_partitions_per_insert_block: this batch
// will never pass as it is) from its transient one (merges behind).
func tooManyPartitions(e *clickhouse.Exception) bool {
	return e.Code == 252 && strings.Contains(strings.ToLower(e.Message), "partitions for single insert block")
}

// errData marks an error about the data itself found before it reached the
// server (the driver could not encode a value): permanent.
var errData = errors.New("data rejected by the driver")

// DataError wraps err as permanent: the driver refused a value.
func DataError(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", errData, err)
}

// Classify decides what to do about err, an error from writing a batch.
// Errors that are not ClickHouse exceptions (connection refused or reset,
// timeouts, a cancelled context, a proxy's HTTP error) are transient.
func Classify(err error) Class {
	if err == nil {
		return Transient
	}
	if errors.Is(err, errData) {
		return Permanent
	}
	var e *clickhouse.Exception
	if !errors.As(err, &e) {
		return Transient
	}
	if tooManyPartitions(e) {
		return Permanent
	}
	if _, ok := transientCodes[e.Code]; ok {
		return Transient
	}
	return Permanent
}

// Code returns the ClickHouse exception code in err, or 0.
func Code(err error) int32 {
	var e *clickhouse.Exception
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
