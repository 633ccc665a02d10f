package queries

import (
	"strings"
	"testing"
	"time"
)

func TestListFilterValidate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	good := ListFilter{}
	if err := good.Validate(); err != nil || good.Limit != DefaultLimit {
		t.Fatalf("empty filter: %v, limit %d", err, good.Limit)
	}
	f := ListFilter{Statuses: []string{"failed", " Running ", "expired"}}
	if err := f.Validate(); err != nil || strings.Join(f.Statuses, ",") != "FAILED,RUNNING,EXPIRED" {
		t.Errorf("statuses: %v %q", err, f.Statuses)
	}
	bad := map[string]ListFilter{
		"limit":       {Limit: MaxLimit + 1},
		"limit neg":   {Limit: -1},
		"status":      {Statuses: []string{"DONE"}},
		"status sql":  {Statuses: []string{"FAILED' OR 1=1 --"}},
		"inverted":    {Start: TimeRange{From: t0, To: t0.Add(-time.Second)}},
		"empty":       {End: TimeRange{From: t0, To: t0}},
		"too old":     {Start: TimeRange{From: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}},
		"order":       {OrderBy: 7},
		"cursor":      {Cursor: "not base64!"},
		"cursor json": {Cursor: encodeCursor(cursor{})[:4]},
		"cursor big":  {Cursor: strings.Repeat("A", maxCursorLen+1)},
	}
	for name, f := range bad {
		if err := f.Validate(); !IsParamError(err) {
			t.Errorf("%s: %v, want a ParamError", name, err)
		}
	}
}

func TestCursorRoundTripAndBinding(t *testing.T) {
	c := cursor{By: OrderByEndTime, Desc: true, Ns: 1234567890123, ID: "req' OR 1=1 --\n\\"}
	s := encodeCursor(c)
	got, err := decodeCursor(s, OrderByEndTime, true)
	if err != nil || got != c {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := decodeCursor(s, OrderByStartTime, true); !IsParamError(err) {
		t.Errorf("cursor accepted for another order field: %v", err)
	}
	if _, err := decodeCursor(s, OrderByEndTime, false); !IsParamError(err) {
		t.Errorf("cursor accepted for another direction: %v", err)
	}
}

func TestParseOrder(t *testing.T) {
	for in, want := range map[string]OrderBy{"": OrderByStartTime, "StartTime": OrderByStartTime, "start_time": OrderByStartTime, "EndTime": OrderByEndTime, "end": OrderByEndTime} {
		if got, err := ParseOrderBy(in); err != nil || got != want {
			t.Errorf("ParseOrderBy(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseOrderBy("request_id"); !IsParamError(err) {
		t.Errorf("unknown order field: %v", err)
	}
	for in, want := range map[string]bool{"": true, "DESC": true, "asc": false, "ASC": false} {
		if got, err := ParseDesc(in); err != nil || got != want {
			t.Errorf("ParseDesc(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDesc("up"); !IsParamError(err) {
		t.Errorf("unknown direction: %v", err)
	}
}

func TestStatsQueryValidate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	q := StatsQuery{Window: TimeRange{From: t0, To: t0.Add(time.Hour)}}
	if err := q.Validate(); err != nil || q.Step != time.Minute {
		t.Errorf("1h window: %v step %v", err, q.Step)
	}
	q = StatsQuery{Window: TimeRange{From: t0, To: t0.Add(72 * time.Hour)}}
	if err := q.Validate(); err != nil || q.Step != time.Hour {
		t.Errorf("3d window: %v step %v", err, q.Step)
	}
	for name, q := range map[string]StatsQuery{
		"missing":     {},
		"open end":    {Window: TimeRange{From: t0}},
		"inverted":    {Window: TimeRange{From: t0, To: t0.Add(-time.Hour)}},
		"odd step":    {Window: TimeRange{From: t0, To: t0.Add(time.Hour)}, Step: 90 * time.Second},
		"many points": {Window: TimeRange{From: t0, To: t0.Add(30 * 24 * time.Hour)}, Step: time.Minute},
	} {
		if err := q.Validate(); !IsParamError(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
