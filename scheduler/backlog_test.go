package scheduler_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/scheduler"
)

// backlogOf reads the two backlog gauges of one function.
func backlogOf(t *testing.T, reader *sdkmetric.ManualReader, ns, fn string) (waiting int64, age float64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				if m.Name == scheduler.MetricBacklogWaiting {
					for _, dp := range d.DataPoints {
						if a, _ := dp.Attributes.Value(event.AttrNamespace); a.AsString() == ns {
							if b, _ := dp.Attributes.Value(event.AttrFunction); b.AsString() == fn {
								waiting = dp.Value
							}
						}
					}
				}
			case metricdata.Gauge[float64]:
				if m.Name == scheduler.MetricBacklogOldestAge {
					for _, dp := range d.DataPoints {
						if a, _ := dp.Attributes.Value(event.AttrNamespace); a.AsString() == ns {
							if b, _ := dp.Attributes.Value(event.AttrFunction); b.AsString() == fn {
								age = dp.Value
							}
						}
					}
				}
			}
		}
	}
	return waiting, age
}

// A backlog behind a busy worker shows in the gauges: how many wait and
// how old the oldest is (growing while it waits); both go back to 0 when
// the backlog drains.
func TestBacklogGauges(t *testing.T) {
	d, demoURL := demo(t)
	reader := sdkmetric.NewManualReader()
	cfg := expiryConfig(t, demoURL)
	n := startNode(t, cfg, nil, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))

	w, age := backlogOf(t, reader, "demo", "succeed")
	assert.Zero(t, w)
	assert.Zero(t, age)

	require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "long", "bl-busy", "").Status)
	require.Eventually(t, func() bool { return d.Running() == 1 }, 10*time.Second, 5*time.Millisecond)
	for i := range 3 {
		require.Equal(t, http.StatusAccepted, n.invoke(t, "demo", "succeed", fmt.Sprintf("bl-%d", i), "").Status)
	}
	w, age1 := backlogOf(t, reader, "demo", "succeed")
	assert.Equal(t, int64(3), w)
	require.Eventually(t, func() bool {
		_, age2 := backlogOf(t, reader, "demo", "succeed")
		return age2 > age1 && age2 > 0
	}, 10*time.Second, 50*time.Millisecond, "the oldest event's age never grew past %v", age1)

	code, body := n.do(t, http.MethodPost, "/v1/events/bl-busy/terminate?mode=immediate", "")
	require.Equal(t, http.StatusAccepted, code, body)
	for i := range 3 {
		n.waitState(t, fmt.Sprintf("bl-%d", i), event.StateFinished.String())
	}
	w, age = backlogOf(t, reader, "demo", "succeed")
	assert.Zero(t, w)
	assert.Zero(t, age)
}
