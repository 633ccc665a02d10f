// Package metadata holds the component's identity and its own telemetry,
// as declared in ../../metadata.yaml: the shape mdatagen generates for
// collector-contrib components, written by hand because mdatagen cannot be
// built for this collector release (see ../../README.md). metadata_test.go
// fails when this file and metadata.yaml drift apart.
package metadata

import (
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"
)

var (
	Type      = component.MustNewType("statustrace")
	ScopeName = "github.com/statustrace/statustrace/exporter"
)

const TracesStability = component.StabilityLevelAlpha

// Telemetry is the exporter's own metrics.
type Telemetry struct {
	RowsWritten    metric.Int64Counter
	SpansDropped   metric.Int64Counter // attribute "reason"
	FieldsRepaired metric.Int64Counter // attributes "field", "repair"
}

// NewTelemetry creates the instruments from the component's meter provider.
func NewTelemetry(set component.TelemetrySettings) (*Telemetry, error) {
	m := set.MeterProvider.Meter(ScopeName)
	var t Telemetry
	var err, e error
	t.RowsWritten, e = m.Int64Counter("statustrace_exporter_rows_written",
		metric.WithDescription("Transition rows written to ClickHouse."), metric.WithUnit("{row}"))
	err = errors.Join(err, e)
	t.SpansDropped, e = m.Int64Counter("statustrace_exporter_spans_dropped",
		metric.WithDescription("Status spans dropped, by reason (missing_attribute, wrong_type, unknown_state, key_too_long, bad_timestamp, unknown_role, expired, invalid_key, invalid_seq, rejected)."), metric.WithUnit("{span}"))
	err = errors.Join(err, e)
	t.FieldsRepaired, e = m.Int64Counter("statustrace_exporter_fields_repaired",
		metric.WithDescription("Fields of kept status spans that were truncated or had invalid UTF-8 replaced, by field and repair."), metric.WithUnit("{field}"))
	err = errors.Join(err, e)
	return &t, err
}
