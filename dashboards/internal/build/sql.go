package build

import (
	"strings"

	"github.com/statustrace/statustrace/internal/schema"
)

// The SQL of the panels. Conventions, so that every panel is right whether
// or not ClickHouse has merged yet and never shows expired rows:
//
//   - Tables are unqualified: the data source's default database is the
//     statustrace database (deploy/grafana/provisioning sets it), which the
//     retention expression needs too.
//   - events is read grouped by its key with the -Merge/min/max readers
//     (internal/schema); filters on non-key columns go to HAVING.
//   - stats_minute is first merged per full key (one exact count per key),
//     then summed: summing exact per-key counts is exact and cheap.
//   - transitions are deduplicated with LIMIT 1 BY its key.
//   - Every read applies the retention cutoff (schema.RetentionCutoffExpr).
//   - Variable values reach SQL only through
//     decodeURLComponent('${var:percentencode}'), which no value can break
//     out of, or for the fixed status list through ${status:singlequote}.
//     Every filter sits in $__conditionalAll, so All costs nothing.

var cutoff = schema.RetentionCutoffExpr

const (
	tenantFilter    = "$__conditionalAll(tenant = decodeURLComponent('${tenant:percentencode}'), $tenant)"
	namespaceFilter = "$__conditionalAll(namespace = decodeURLComponent('${namespace:percentencode}'), $namespace)"
	functionFilter  = "$__conditionalAll(function = decodeURLComponent('${function:percentencode}'), $function)"
	requestFilter   = "$__conditionalAll(request_id = decodeURLComponent('${request_id:percentencode}'), $request_id)"
	keyFilters      = tenantFilter + "\n      AND " + namespaceFilter + "\n      AND " + functionFilter

	terminalStates = "('FINISHED', 'FAILED', 'ABORTED', 'EXPIRED')"
	failedStates   = "('FAILED', 'EXPIRED')"
	inFlightStates = "('QUEUED', 'RUNNING', 'RETRYING', 'TERMINATING')"

	// requestID is the event the detail dashboard shows.
	requestID = "decodeURLComponent('${request_id:percentencode}')"
)

func statusFilter(col string) string {
	return "$__conditionalAll(" + col + " IN (${status:singlequote}), $status)"
}

// sql trims the leading newline of a raw string so the JSON stays tidy.
func sql(s string) string { return strings.TrimSpace(s) }

// statsRows is stats_minute in the time range, one exact count (n) per key.
var statsRows = `
    SELECT bucket, namespace, function, to_state, error_code, uniqExactMerge(transitions) AS n
    FROM stats_minute
    WHERE $__timeFilter(bucket) AND bucket >= ` + cutoff + `
      AND ` + keyFilters + `
    GROUP BY tenant, namespace, function, qualifier, bucket, to_state, error_code`

// statsInterval buckets per Grafana's interval in whole minutes, the
// resolution of stats_minute.
const statsInterval = "toStartOfInterval(bucket, INTERVAL intDiv($__interval_s + 59, 60) minute)"

// eventColumns read one event's current row from events (grouped by key).
const eventColumns = `
        argMaxMerge(state) AS current_state,
        multiIf(current_state = 'FINISHED', 'FINISHED', current_state IN ` + failedStates + `, 'FAILED',
                current_state = 'ABORTED', 'ABORTED', 'RUNNING') AS public_status,
        max(attempts) AS attempt_count,
        min(first_time) AS first_seen,
        max(last_time) AS last_seen,
        min(start_time) AS queued_at,
        max(end_time) AS ended_at,
        dateDiff('millisecond', ifNull(queued_at, first_seen), ifNull(ended_at, now64(9))) / 1000 AS duration_s,
        argMaxMerge(last_error_code) AS error,
        argMaxMerge(last_error_message) AS message,
        argMaxMerge(last_node) AS node_name,
        any(invoke_type) AS invoke,
        replaceRegexpOne(lower(hex(max(trace_id))), '^0{32}$', '') AS trace`

// eventScope restricts a table to the event of the detail dashboard: the
// tenant comes from events (bloom filter on request_id), so that the
// transitions lookup is a primary-key range even when tenant is All.
var eventScope = `tenant IN (SELECT tenant FROM events WHERE request_id = ` + requestID + ` AND ` + tenantFilter + `)
      AND request_id = ` + requestID

// eventTransitions are the event's transitions, deduplicated. span_id is
// named because * leaves out ALIAS columns.
var eventTransitions = `(
    SELECT *, span_id
    FROM transitions
    WHERE ` + eventScope + `
      AND time >= ` + cutoff + `
    ORDER BY seq, time
    LIMIT 1 BY tenant, request_id, seq
)`
