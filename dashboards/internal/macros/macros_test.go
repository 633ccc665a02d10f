package macros

import (
	"strings"
	"testing"
	"time"
)

var (
	from = time.Date(2014, 11, 12, 11, 45, 26, 371_000_000, time.UTC)
	to   = time.Date(2015, 11, 12, 11, 45, 26, 371_000_000, time.UTC)
)

func q(vars map[string]Var) Query {
	return Query{From: from, To: to, Interval: 20 * time.Second, Vars: vars}
}

// The expected strings are the grafana-clickhouse-datasource macro outputs
// for this time range and interval.
func TestMacros(t *testing.T) {
	cases := []struct{ in, want string }{
		{"$__fromTime", "toDateTime(1415792726)"},
		{"$__toTime", "toDateTime(1447328726)"},
		{"$__fromTime_ms", "fromUnixTimestamp64Milli(1415792726371)"},
		{"$__toTime_ms", "fromUnixTimestamp64Milli(1447328726371)"},
		{"$__timeFilter(time)", "time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)"},
		{"$__timeFilter_ms( t )", "t >= fromUnixTimestamp64Milli(1415792726371) AND t <= fromUnixTimestamp64Milli(1447328726371)"},
		{"$__dateFilter(d)", "d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')"},
		{"$__dateTimeFilter(d, t)", "(d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')) AND (t >= toDateTime(1415792726) AND t <= toDateTime(1447328726))"},
		{"$__dt(d, t)", "(d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')) AND (t >= toDateTime(1415792726) AND t <= toDateTime(1447328726))"},
		{"$__timeInterval(bucket)", "toStartOfInterval(toDateTime(bucket), INTERVAL 20 second)"},
		{"$__timeInterval_ms(time)", "toStartOfInterval(toDateTime64(time, 3), INTERVAL 20000 millisecond)"},
		{"INTERVAL $__interval_s second", "INTERVAL 20 second"},
		// Nested brackets stay inside the argument.
		{"$__timeFilter(toDateTime(last_time))", "toDateTime(last_time) >= toDateTime(1415792726) AND toDateTime(last_time) <= toDateTime(1447328726)"},
		// A macro without arguments does not swallow a later bracket.
		{"$__fromTime AND f(x)", "toDateTime(1415792726) AND f(x)"},
		// Repeated occurrences all expand.
		{"$__fromTime, $__fromTime", "toDateTime(1415792726), toDateTime(1415792726)"},
	}
	for _, c := range cases {
		got, err := Expand(c.in, q(nil))
		if err != nil {
			t.Errorf("Expand(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("Expand(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestIntervalAtLeastOneSecond(t *testing.T) {
	qq := q(nil)
	qq.Interval = 200 * time.Millisecond
	got, err := Expand("$__interval_s|$__timeInterval(t)", qq)
	if err != nil {
		t.Fatal(err)
	}
	if want := "1|toStartOfInterval(toDateTime(t), INTERVAL 1 second)"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestConditionalAll(t *testing.T) {
	vars := map[string]Var{
		"tenant": Single("acme"),
		"status": All("FAILED", "FINISHED"),
		"empty":  Single(""),
		"multi":  Multiple("a", "b"),
	}
	cases := []struct{ in, want string }{
		{"WHERE $__conditionalAll(tenant = '${tenant}', $tenant)", "WHERE tenant = 'acme'"},
		{"WHERE $__conditionalAll(state IN (${status:singlequote}), $status)", "WHERE 1=1"},
		{"WHERE $__conditionalAll(x = '$empty', ${empty})", "WHERE 1=1"},
		{"WHERE $__conditionalAll(f(a, g(b)) IN ($multi), $multi)", "WHERE f(a, g(b)) IN ('a','b')"},
		{
			"$__conditionalAll(a = '$tenant', $tenant) AND $__conditionalAll(s IN ($status), $status)",
			"a = 'acme' AND 1=1",
		},
	}
	for _, c := range cases {
		got, err := Expand(c.in, q(vars))
		if err != nil {
			t.Errorf("Expand(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("Expand(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestFormats(t *testing.T) {
	vars := map[string]Var{
		"one":   Single(`it's a\b`),
		"multi": Multiple("x", "y'z"),
		"all":   All("p", "q"),
	}
	cases := []struct{ in, want string }{
		{"$one", `it's a\b`},
		{"${one}", `it's a\b`},
		{"[[one]]", `it's a\b`},
		{"${multi}", `'x','y'z'`}, // the plugin's own format: no escaping
		{"${all}", `'p','q'`},
		{"${one:raw}", `it's a\b`},
		{"${multi:csv}", `x,y'z`},
		{"${one:singlequote}", `'it\'s a\b'`},
		{"${multi:singlequote}", `'x','y\'z'`},
		{"${one:sqlstring}", `'it''s a\b'`},
		{"${multi:sqlstring}", `'x','y''z'`},
		{"${multi:doublequote}", `"x","y'z"`},
		{"${one:percentencode}", `it%27s%20a%5Cb`},
		{"${multi:percentencode}", `%7Bx%2Cy%27z%7D`},
	}
	for _, c := range cases {
		got, err := Expand(c.in, q(vars))
		if err != nil {
			t.Errorf("Expand(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("Expand(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestPercentEncodeLeavesNoQuoteOrBackslash(t *testing.T) {
	hostile := "' OR 1=1 --\\'\"\n\x00(ä)*!~._-"
	got := PercentEncode(hostile)
	if want := "%27%20OR%201%3D1%20--%5C%27%22%0A%00%28%C3%A4%29%2A%21~._-"; got != want {
		t.Fatalf("PercentEncode = %q, want %q", got, want)
	}
	if strings.ContainsAny(got, "'\\\"() \n") {
		t.Fatalf("PercentEncode left a special character: %q", got)
	}
}

func TestErrors(t *testing.T) {
	vars := map[string]Var{"tenant": Single("acme")}
	cases := map[string]string{
		"$nope":                                     "unknown variable $nope",
		"${tenant:lucene}":                          `unsupported format "lucene"`,
		"${tenant.name}":                            "field paths are not supported",
		"$__conditionalAll(a = 1, $nope)":           `unknown variable "nope"`,
		"$__conditionalAll(a = 1, tenant)":          "is not $variable",
		"$__conditionalAll(a = 1)":                  "want 2 arguments",
		"$__conditionalAll(a = (1, $tenant)":        "missing closing bracket",
		"$__timeFilter":                             "expected 1 argument(s), received 0",
		"$__timeFilter(a, b)":                       "expected 1 argument(s), received 2",
		"$__timeInterval(f(x)":                      "missing closing bracket",
		"SELECT $__timeGroup(t, '1m')":              "unsupported macro or variable $__timeGroup",
		"$__conditionalAll(a = 1, ${tenant:raw})":   "is not $variable", // the plugin does not see a formatted variable
		"SELECT 1 WHERE $__timeFilter(t) AND $__to": "unsupported macro or variable $__to",
	}
	for in, want := range cases {
		_, err := Expand(in, q(vars))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Expand(%q) error = %v, want it to contain %q", in, err, want)
		}
	}
}
