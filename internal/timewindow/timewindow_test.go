package timewindow

import (
	"testing"
	"time"
)

func TestBounds(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	b := Window{Retention: 72 * time.Hour, MaxSkew: 10 * time.Minute}.At(now)
	for _, c := range []struct {
		name string
		at   time.Time
		want Verdict
	}{
		{"now", now, OK},
		{"just inside retention", now.Add(-72 * time.Hour), OK},
		{"just expired", now.Add(-72*time.Hour - time.Nanosecond), Expired},
		{"104 days ago", now.Add(-104 * 24 * time.Hour), Expired},
		{"epoch", time.Unix(0, 0), Expired},
		{"within skew", now.Add(10 * time.Minute), OK},
		{"a year ahead", now.AddDate(1, 0, 0), Future},
		{"just past skew", now.Add(10*time.Minute + time.Nanosecond), Future},
		{"year 2106, TTL overflows", time.Date(2106, 2, 5, 0, 0, 0, 0, time.UTC), Overflow},
		{"year 2200", time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), Overflow},
	} {
		if got := b.Check(c.at.UnixNano()); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// The overflow edge: time + retention lands exactly on the last DateTime
// second (kept) or one past it (overflow), whatever the clock says.
func TestOverflowEdge(t *testing.T) {
	ret := 72 * time.Hour
	b := Window{Retention: ret, MaxSkew: MaxSkew}.At(time.Unix(MaxDateTime, 0)) // a clock far ahead: only overflow limits
	last := (MaxDateTime - int64(ret/time.Second)) * int64(time.Second)
	if v := b.Check(last + int64(time.Second) - 1); v != OK {
		t.Errorf("last storable second: %v", v)
	}
	if v := b.Check(last + int64(time.Second)); v != Overflow {
		t.Errorf("first overflowing second: %v", v)
	}
}

func TestValidate(t *testing.T) {
	if err := (Window{Retention: 72 * time.Hour, MaxSkew: 10 * time.Minute}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, w := range []Window{
		{Retention: 0, MaxSkew: time.Minute},
		{Retention: time.Hour, MaxSkew: 0},
		{Retention: time.Hour, MaxSkew: 8 * 24 * time.Hour},
		{Retention: 100 * 365 * 24 * time.Hour, MaxSkew: time.Minute},
	} {
		if err := w.Validate(); err == nil {
			t.Errorf("%+v: want an error", w)
		}
	}
}

func TestVerdictNames(t *testing.T) {
	for v, want := range map[Verdict]string{OK: "ok", Expired: "expired", Future: "bad_timestamp", Overflow: "bad_timestamp"} {
		if v.String() != want {
			t.Errorf("%d: %s, want %s", v, v, want)
		}
	}
}
