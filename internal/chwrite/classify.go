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

	"github.com/ClickHouse/ch-go/proto"
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
// save by fixing it. The codes are ch-go's constants, generated from
// ClickHouse's own error list, so none is spelled or numbered by hand.
var transientCodes = map[proto.Error]struct{}{
	proto.ErrUnexpectedEndOfFile:               {},
	proto.ErrNoSuchColumnInTable:               {},
	proto.ErrAttemptToReadAfterEOF:             {},
	proto.ErrCannotReadAllData:                 {},
	proto.ErrUnknownIdentifier:                 {},
	proto.ErrUnknownTable:                      {},
	proto.ErrUnknownDatabase:                   {},
	proto.ErrTimeoutExceeded:                   {},
	proto.ErrReadonly:                          {},
	proto.ErrUnknownUser:                       {},
	proto.ErrWrongPassword:                     {},
	proto.ErrRequiredPassword:                  {},
	proto.ErrIPAddressNotAllowed:               {},
	proto.ErrDNSError:                          {},
	proto.ErrQuotaExceeded:                     {}, // per interval: the next one admits the batch
	proto.ErrTooManySimultaneousQueries:        {},
	proto.ErrNoFreeConnection:                  {},
	proto.ErrSocketTimeout:                     {},
	proto.ErrNetworkError:                      {},
	proto.ErrNoZookeeper:                       {},
	proto.ErrAborted:                           {},
	proto.ErrMemoryLimitExceeded:               {},
	proto.ErrTableIsReadOnly:                   {},
	proto.ErrNotEnoughSpace:                    {}, // a full disk an operator can free
	proto.ErrTooManyParts:                      {}, // but see tooManyPartitions
	proto.ErrAllConnectionTriesFailed:          {},
	proto.ErrTooFewLiveReplicas:                {},
	proto.ErrUnsatisfiedQuorumForPreviousWrite: {},
	proto.ErrLimitExceeded:                     {},
	proto.ErrUnknownStatusOfInsert:             {},
	proto.ErrUnfinished:                        {},
	proto.ErrSessionIsLocked:                   {},
	proto.ErrQueryWasCancelled:                 {},
	proto.ErrSystemError:                       {},
	proto.ErrCannotScheduleTask:                {},
	proto.ErrAccessDenied:                      {},
	proto.ErrAuthenticationFailed:              {},
	proto.ErrKeeperException:                   {},
	proto.ErrUnknownException:                  {},
}

// tooManyPartitions tells code 252's permanent form (one INSERT block
// spanning more partitions than max_partitions_per_insert_block: this batch
// will never pass as it is) from its transient one (merges behind).
func tooManyPartitions(e *clickhouse.Exception) bool {
	return proto.Error(e.Code) == proto.ErrTooManyParts && strings.Contains(strings.ToLower(e.Message), "partitions for single insert block")
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
	if _, ok := transientCodes[proto.Error(e.Code)]; ok {
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
