package stack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestScrapeMetric(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`# HELP x_dropped_total dropped
# TYPE x_dropped_total counter
x_dropped_total{reason="expired",otel_scope_name="a"} 101
x_dropped_total{reason="bad_timestamp",otel_scope_name="a"} 2
x_dropped_total_extra 7
x_bytes 5e+03
`))
	}))
	defer srv.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
		found  bool
	}{
		{"x_dropped_total", nil, 103, true},
		{"x_dropped_total", []string{`reason="expired"`}, 101, true},
		{"x_dropped_total", []string{`reason="rejected"`}, 0, false},
		{"x_bytes", nil, 5000, true},
		{"x_absent", nil, 0, false},
	} {
		got, found, err := ScrapeMetric(ctx, srv.URL, tc.name, tc.labels...)
		if err != nil || got != tc.want || found != tc.found {
			t.Errorf("%s%v = %v, %v, %v; want %v, %v", tc.name, tc.labels, got, found, err, tc.want, tc.found)
		}
	}
	if _, _, err := ScrapeMetric(ctx, srv.URL+"/nothing\x7f", "x"); err == nil {
		t.Error("bad URL: want an error")
	}
}
