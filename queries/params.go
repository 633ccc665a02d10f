package queries

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/statustrace/statustrace/event"
)

// ParamError is a caller mistake: a parameter that cannot be used. The API
// answers it with 400 and the message.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Reason }

func paramErr(param, format string, args ...any) error {
	return &ParamError{Param: param, Reason: fmt.Sprintf(format, args...)}
}

// IsParamError reports whether err (or an error it wraps) is a ParamError.
func IsParamError(err error) bool {
	var pe *ParamError
	return errors.As(err, &pe)
}

// ErrNotFound is returned by Get when the caller cannot see the event: it does
// not exist, it is another tenant's or outside the caller's namespaces, or it
// is older than the retention window. The cases are deliberately the same.
var ErrNotFound = errors.New("event not found")

// Scope is who is asking: every query is limited to it.
type Scope struct {
	Tenant     string
	Namespaces []string // nil or empty: every namespace of the tenant
}

func (s Scope) validate() error {
	if s.Tenant == "" {
		return paramErr("tenant", "required")
	}
	return nil
}

// Limits of list queries.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// OrderBy is the time a list is ordered by.
type OrderBy uint8

const (
	OrderByStartTime OrderBy = iota // when the event was accepted (QUEUED)
	OrderByEndTime                  // when it reached a terminal state; running events sort as 0
)

func (o OrderBy) String() string {
	if o == OrderByEndTime {
		return "end_time"
	}
	return "start_time"
}

// ParseOrderBy accepts start_time/end_time (and StartTime/EndTime, start/end).
func ParseOrderBy(s string) (OrderBy, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "_", "")) {
	case "", "start", "starttime":
		return OrderByStartTime, nil
	case "end", "endtime":
		return OrderByEndTime, nil
	}
	return 0, paramErr("order_by", "unknown order field %q (want start_time or end_time)", s)
}

// ParseDesc accepts asc/desc in any case; "" is desc (newest first).
func ParseDesc(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "", "desc":
		return true, nil
	case "asc":
		return false, nil
	}
	return false, paramErr("order", "unknown order %q (want asc or desc)", s)
}

// detailedOnly names the detailed states that are not also public statuses.
func detailedOnly() []string {
	var out []string
	for _, st := range event.States() {
		if !event.IsPublicStatus(st.String()) {
			out = append(out, st.String())
		}
	}
	return out
}

// NormalizeStatus checks one status filter value (a public status, see
// event.PublicStatuses, or a detailed state) and returns it upper-case.
func NormalizeStatus(s string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if event.IsPublicStatus(u) {
		return u, nil
	}
	if st, err := event.ParseState(u); err == nil && st.Valid() {
		return u, nil
	}
	return "", paramErr("status", "unknown status %q (want %s, or a detailed state: %s)", s,
		strings.Join(event.PublicStatuses(), ", "), strings.Join(detailedOnly(), ", "))
}

// TimeRange is a half-open interval [From, To). A zero bound is open.
type TimeRange struct {
	From, To time.Time
}

// IsZero reports whether neither bound is set.
func (r TimeRange) IsZero() bool { return r.From.IsZero() && r.To.IsZero() }

// minTime and maxTime bound the times a query accepts: DateTime64(9) holds
// 1900..2262, the retention window is recent, and this keeps ms*1e6 in Int64.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 1e6, time.UTC)
	maxTime = time.Date(2261, 12, 31, 0, 0, 0, 0, time.UTC)
)

func (r TimeRange) validate(param string, required bool) error {
	if required && (r.From.IsZero() || r.To.IsZero()) {
		return paramErr(param, "both ends of the time range are required")
	}
	for _, t := range []time.Time{r.From, r.To} {
		if !t.IsZero() && (t.Before(minTime) || t.After(maxTime)) {
			return paramErr(param, "time %s out of range", t.UTC().Format(time.RFC3339Nano))
		}
	}
	if !r.From.IsZero() && !r.To.IsZero() && !r.From.Before(r.To) {
		return paramErr(param, "inverted or empty range: from %s is not before to %s",
			r.From.UTC().Format(time.RFC3339Nano), r.To.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// ms converts a bound to the views' Int64 Unix milliseconds; 0 = open.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// ListFilter selects and orders events. Empty fields do not filter.
type ListFilter struct {
	Namespace   string
	Function    string
	Qualifier   string
	RequestID   string
	InvokeTypes []string
	Statuses    []string // public statuses or detailed states, see NormalizeStatus
	Start       TimeRange
	End         TimeRange
	OrderBy     OrderBy
	Desc        bool
	Offset      uint64
	Limit       int    // 0 = DefaultLimit; at most MaxLimit
	Cursor      string // from a previous Page.NextCursor: continue after it
}

// Validate checks f and fills defaults.
func (f *ListFilter) Validate() error {
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	if f.Limit < 0 || f.Limit > MaxLimit {
		return paramErr("limit", "%d out of range 1..%d", f.Limit, MaxLimit)
	}
	if f.OrderBy != OrderByStartTime && f.OrderBy != OrderByEndTime {
		return paramErr("order_by", "unknown order field %d", f.OrderBy)
	}
	for i, s := range f.Statuses {
		n, err := NormalizeStatus(s)
		if err != nil {
			return err
		}
		f.Statuses[i] = n
	}
	if err := f.Start.validate("start_time", false); err != nil {
		return err
	}
	if err := f.End.validate("end_time", false); err != nil {
		return err
	}
	if f.Cursor != "" {
		if _, err := decodeCursor(f.Cursor, f.OrderBy, f.Desc); err != nil {
			return err
		}
	}
	return nil
}

// cursor is the keyset position after the last row of a page. It records the
// order it was made for, so it cannot be replayed with another order.
type cursor struct {
	By   OrderBy `json:"o"`
	Desc bool    `json:"d"`
	Ns   int64   `json:"t"`
	ID   string  `json:"i"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c) // plain struct: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxCursorLen bounds what is decoded: a request ID is at most
// event.MaxKeyBytes, JSON-escaped at most 6x, plus a small envelope.
const maxCursorLen = 4 * (6*event.MaxKeyBytes + 128) / 3

func decodeCursor(s string, by OrderBy, desc bool) (cursor, error) {
	var c cursor
	if len(s) > maxCursorLen {
		return c, paramErr("cursor", "malformed cursor (too long)")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, paramErr("cursor", "malformed cursor")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.ID == "" {
		return c, paramErr("cursor", "malformed cursor")
	}
	if c.By != by || c.Desc != desc {
		return c, paramErr("cursor", "the cursor was made for order %s %s, not %s %s", c.By, dirName(c.Desc), by, dirName(desc))
	}
	return c, nil
}

func dirName(desc bool) string {
	if desc {
		return "desc"
	}
	return "asc"
}

// StatsQuery selects a statistics window.
type StatsQuery struct {
	Namespace string
	Function  string
	Qualifier string
	Window    TimeRange     // required, both ends
	Step      time.Duration // series step, a multiple of a minute; 0 = automatic
}

// MaxSeriesPoints bounds Window/Step.
const MaxSeriesPoints = 10000

// Validate checks q and fills the automatic step: a minute for windows up to
// 6 hours, an hour beyond.
func (q *StatsQuery) Validate() error {
	if err := q.Window.validate("window", true); err != nil {
		return err
	}
	if q.Step == 0 {
		q.Step = time.Minute
		if q.Window.To.Sub(q.Window.From) > 6*time.Hour {
			q.Step = time.Hour
		}
	}
	if q.Step < time.Minute || q.Step%time.Minute != 0 {
		return paramErr("step", "%s is not a whole number of minutes", q.Step)
	}
	if q.Step > 31*24*time.Hour {
		return paramErr("step", "%s is longer than 31 days", q.Step)
	}
	if n := q.Window.To.Sub(q.Window.From) / q.Step; n > MaxSeriesPoints {
		return paramErr("step", "%s over the window makes %d points (at most %d)", q.Step, n, MaxSeriesPoints)
	}
	return nil
}

// WindowFilter selects transitions by time, for export.
type WindowFilter struct {
	Namespace string
	Function  string
	Qualifier string
	Window    TimeRange // required, both ends
}

// Validate checks w.
func (w *WindowFilter) Validate() error {
	return w.Window.validate("window", true)
}
