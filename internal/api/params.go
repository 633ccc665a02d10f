package api

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/queries"
)

func bad(param, format string, args ...any) error {
	return &queries.ParamError{Param: param, Reason: fmt.Sprintf(format, args...)}
}

// checkKey rejects a key filter no stored event can have: longer than the
// exporter keeps, or not UTF-8.
func checkKey(param, v string) error {
	if len(v) > event.MaxKeyBytes {
		return bad(param, "longer than %d bytes", event.MaxKeyBytes)
	}
	if !utf8.ValidString(v) {
		return bad(param, "not valid UTF-8")
	}
	if param == "request_id" && v == "" {
		return bad(param, "empty")
	}
	return nil
}

// ParseTime reads a time parameter: Unix milliseconds, or RFC 3339.
func ParseTime(param, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 || n > 9_000_000_000_000 {
			return time.Time{}, bad(param, "%d is not a Unix time in milliseconds", n)
		}
		return time.UnixMilli(n).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, bad(param, "%.40q is neither Unix milliseconds nor an RFC 3339 time", v)
	}
	return t.UTC(), nil
}

// Caps on what one request may ask for. A filter's values become one IN
// list of the SQL: MaxFilterValues values of at most event.MaxKeyBytes each
// stay far below ClickHouse's max_query_size (256 KiB by default), so a
// long filter is a 400 naming the cap, never a 500 from the database.
const (
	MaxQueryValues  = 1000 // values in one query string, all parameters together
	MaxFilterValues = 100  // values of one filter (repeated and/or comma-separated)
)

// parseQuery parses a raw query string strictly. r.URL.Query() drops what
// it cannot parse (a "%zz", a ';' separator, more pairs than net/url
// allows) and with it the caller's filters, so a typo would answer with the
// whole tenant; here any such problem is a 400 naming it.
func parseQuery(raw string) (url.Values, error) {
	if n := strings.Count(raw, "&") + 1; n > MaxQueryValues {
		return nil, bad("query string", "%d parameters, at most %d", n, MaxQueryValues)
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, bad("query string", "%v", err)
	}
	return q, nil
}

// CheckFilterValues applies MaxFilterValues to the repeatable fields of a
// list filter; the CLI calls it too, so that its direct mode refuses what
// the API refuses.
func CheckFilterValues(f *queries.ListFilter) error {
	if err := capValues("invoke_type", len(f.InvokeTypes)); err != nil {
		return err
	}
	return capValues("status", len(f.Statuses))
}

func capValues(param string, n int) error {
	if n > MaxFilterValues {
		return bad(param, "%d values, at most %d", n, MaxFilterValues)
	}
	return nil
}

// paramSet lists the query parameters an endpoint knows; others are 400, so
// a misspelt filter does not silently match everything.
type paramSet []string

func (ps paramSet) check(q url.Values) error {
	for k := range q {
		if !slices.Contains(ps, k) {
			return bad(k, "unknown parameter (known: %s)", strings.Join(ps, ", "))
		}
	}
	return nil
}

func onlyParams(q url.Values, known ...string) error { return paramSet(known).check(q) }

// single returns the one value of a parameter; repeating it is an error.
func single(q url.Values, k string) (string, error) {
	vs := q[k]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", bad(k, "given %d times", len(vs))
}

// exactList collects a key parameter given repeatedly. Values are taken as
// they are (no splitting or trimming: a key may hold commas and spaces).
func exactList(q url.Values, k string) ([]string, error) {
	out := slices.Clone(q[k])
	if err := capValues(k, len(out)); err != nil {
		return nil, err
	}
	for _, v := range out {
		if v == "" {
			return nil, bad(k, "empty value")
		}
		if err := checkKey(k, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// list collects an enum parameter given repeatedly and/or comma-separated.
func list(q url.Values, k string) ([]string, error) {
	var out []string
	for _, v := range q[k] {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		if err := capValues(k, len(out)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var listParams = paramSet{"namespace", "function", "qualifier", "request_id", "invoke_type", "status",
	"start_from", "start_to", "end_from", "end_to", "order_by", "order", "offset", "limit", "cursor"}

func parseListQuery(q url.Values) (queries.ListFilter, error) {
	var f queries.ListFilter
	err := listParams.check(q)
	if err != nil {
		return f, err
	}
	keys := map[string]*string{"namespace": &f.Namespace, "function": &f.Function, "qualifier": &f.Qualifier, "request_id": &f.RequestID}
	for k, dst := range keys {
		v, err := single(q, k)
		if err != nil {
			return f, err
		}
		if v != "" {
			if err := checkKey(k, v); err != nil {
				return f, err
			}
		}
		*dst = v
	}
	if f.InvokeTypes, err = exactList(q, "invoke_type"); err != nil {
		return f, err
	}
	if f.Statuses, err = list(q, "status"); err != nil {
		return f, err
	}
	for i, v := range f.Statuses {
		n, err := queries.NormalizeStatus(v)
		if err != nil {
			return f, err
		}
		f.Statuses[i] = n
	}
	if f.Start, err = timeRange(q, "start_from", "start_to"); err != nil {
		return f, err
	}
	if f.End, err = timeRange(q, "end_from", "end_to"); err != nil {
		return f, err
	}
	v, err := single(q, "order_by")
	if err != nil {
		return f, err
	}
	if f.OrderBy, err = queries.ParseOrderBy(v); err != nil {
		return f, err
	}
	if v, err = single(q, "order"); err != nil {
		return f, err
	}
	if f.Desc, err = queries.ParseDesc(v); err != nil {
		return f, err
	}
	if v, err = single(q, "offset"); err != nil {
		return f, err
	}
	if v != "" {
		n, perr := strconv.ParseUint(v, 10, 64)
		if perr != nil || n > MaxOffset {
			return f, bad("offset", "%.20q is not an integer in 0..%d (page deeper with the cursor)", v, MaxOffset)
		}
		f.Offset = n
	}
	if v, err = single(q, "limit"); err != nil {
		return f, err
	}
	if v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > queries.MaxLimit {
			return f, bad("limit", "%.20q is not an integer in 1..%d", v, queries.MaxLimit)
		}
		f.Limit = n
	}
	if f.Cursor, err = single(q, "cursor"); err != nil {
		return f, err
	}
	return f, f.Validate()
}

// MaxOffset bounds offset paging; deeper pages use the cursor, which costs
// the same at any depth.
const MaxOffset = 100_000

func timeRange(q url.Values, fromKey, toKey string) (queries.TimeRange, error) {
	var r queries.TimeRange
	fv, err := single(q, fromKey)
	if err != nil {
		return r, err
	}
	tv, err := single(q, toKey)
	if err != nil {
		return r, err
	}
	if r.From, err = ParseTime(fromKey, fv); err != nil {
		return r, err
	}
	if r.To, err = ParseTime(toKey, tv); err != nil {
		return r, err
	}
	if !r.From.IsZero() && !r.To.IsZero() && !r.From.Before(r.To) {
		return r, bad(fromKey, "inverted or empty range: %s is not before %s=%s", fv, toKey, tv)
	}
	return r, nil
}

// ParseStep reads a series step: a Go duration ("1m", "1h") or seconds.
func ParseStep(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, bad("step", "%.20q is not a duration (1m, 1h) or seconds", v)
	}
	return d, nil
}

var statsParams = paramSet{"namespace", "function", "qualifier", "from", "to", "step", "durations"}

func parseStatsQuery(q url.Values) (queries.StatsQuery, bool, error) {
	var sq queries.StatsQuery
	if err := statsParams.check(q); err != nil {
		return sq, false, err
	}
	for k, dst := range map[string]*string{"namespace": &sq.Namespace, "function": &sq.Function, "qualifier": &sq.Qualifier} {
		v, err := single(q, k)
		if err != nil {
			return sq, false, err
		}
		if err := checkKey(k, v); err != nil {
			return sq, false, err
		}
		*dst = v
	}
	w, err := requiredWindow(q)
	if err != nil {
		return sq, false, err
	}
	sq.Window = w
	v, err := single(q, "step")
	if err != nil {
		return sq, false, err
	}
	if sq.Step, err = ParseStep(v); err != nil {
		return sq, false, err
	}
	v, err = single(q, "durations")
	if err != nil {
		return sq, false, err
	}
	withDurations := false
	if v != "" {
		if withDurations, err = strconv.ParseBool(v); err != nil {
			return sq, false, bad("durations", "%.20q is not true or false", v)
		}
	}
	return sq, withDurations, sq.Validate()
}

func requiredWindow(q url.Values) (queries.TimeRange, error) {
	w, err := timeRange(q, "from", "to")
	if err != nil {
		return w, err
	}
	if w.From.IsZero() || w.To.IsZero() {
		return w, bad("from", "from and to are both required")
	}
	return w, nil
}
