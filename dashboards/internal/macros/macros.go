// Package macros expands a Grafana ClickHouse panel query the way Grafana and
// the grafana-clickhouse-datasource plugin (v4) do before the SQL reaches
// ClickHouse, so that tests can run a dashboard's SQL on a real engine.
//
// Expansion happens in the plugin's order:
//
//  1. $__conditionalAll(condition, $var) (plugin frontend): replaced by "1=1"
//     when $var has All (or an empty value) selected, else by condition.
//  2. Template variables (Grafana's template service): $var, ${var} and
//     ${var:format}, with the plugin's default format (a multi-value list
//     becomes 'a','b', a single value is inserted raw). Formats supported:
//     raw, csv, text, singlequote, sqlstring, doublequote, percentencode.
//  3. Macros (plugin backend, grafana-plugin-sdk-go sqlutil parsing):
//     $__timeFilter(col), $__timeFilter_ms(col), $__dateFilter(col),
//     $__dateTimeFilter(dateCol, timeCol) (alias $__dt), $__fromTime,
//     $__toTime, $__fromTime_ms, $__toTime_ms, $__timeInterval(col),
//     $__timeInterval_ms(col), $__interval_s.
//
// Expand is stricter than Grafana where Grafana would silently send broken
// SQL: an unknown variable, an unknown format, a $__conditionalAll whose
// second argument names no variable, and any $__macro left after expansion
// are errors.
package macros

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Var is the current value of a template variable.
type Var struct {
	// Values are the selected values; with All selected, every option's
	// value (what Grafana interpolates for All when there is no custom all
	// value).
	Values []string
	// Multi is true for a multi-value variable: its value is a list even
	// when one option is selected.
	Multi bool
	// All is true when the All option is selected.
	All bool
}

// Single is a single-value variable set to v.
func Single(v string) Var { return Var{Values: []string{v}} }

// Multiple is a multi-value variable with values selected.
func Multiple(values ...string) Var { return Var{Values: values, Multi: true} }

// All is a variable with All selected, whose options are options.
func All(options ...string) Var { return Var{Values: options, Multi: true, All: true} }

// Query is what a panel query is expanded against: the dashboard time
// range, the panel interval and the template variables.
type Query struct {
	From, To time.Time
	// Interval is Grafana's $__interval for the panel (time range divided by
	// max data points, rounded); macros use at least one second.
	Interval time.Duration
	Vars     map[string]Var
}

// Expand returns sql with conditionals, variables and macros expanded.
func Expand(sql string, q Query) (string, error) {
	out, err := conditionalAll(sql, q.Vars)
	if err != nil {
		return "", err
	}
	if out, err = interpolate(out, q.Vars); err != nil {
		return "", err
	}
	return expandMacros(out, q)
}

const conditionalMacro = "$__conditionalAll("

// conditionalAll mirrors the plugin's applyConditionalAll: occurrences are
// replaced from the last one backwards, arguments split at top-level commas.
func conditionalAll(sql string, vars map[string]Var) (string, error) {
	for {
		i := strings.LastIndex(sql, conditionalMacro)
		if i < 0 {
			return sql, nil
		}
		args, n := splitArgs(sql[i+len(conditionalMacro)-1:])
		if n < 0 {
			return "", fmt.Errorf("$__conditionalAll at offset %d: missing closing bracket", i)
		}
		if len(args) != 2 {
			return "", fmt.Errorf("$__conditionalAll at offset %d: want 2 arguments (condition, $variable), got %d", i, len(args))
		}
		m := condVarRE.FindStringSubmatch(strings.TrimSpace(args[1]))
		if m == nil {
			return "", fmt.Errorf("$__conditionalAll at offset %d: second argument %q is not $variable or ${variable}", i, args[1])
		}
		name := m[1] + m[2]
		v, ok := vars[name]
		if !ok {
			return "", fmt.Errorf("$__conditionalAll at offset %d: unknown variable %q", i, name)
		}
		phrase := args[0]
		if v.All || len(v.Values) == 0 || (len(v.Values) == 1 && v.Values[0] == "") {
			phrase = "1=1"
		}
		end := i + len(conditionalMacro) - 1 + n
		sql = sql[:i] + phrase + sql[end:]
	}
}

// The plugin finds the variable with /(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+/:
// a format (${v:fmt}) is not recognised there.
var condVarRE = regexp.MustCompile(`^\$\{(\w+)\}|^\$(\w+)`)

// splitArgs parses a bracketed argument list at the start of s (which must
// begin with "("): the arguments, untrimmed, and the length consumed
// including both brackets; -1 when the closing bracket is missing. Like the
// plugin and the SDK, it counts brackets and ignores quotes.
func splitArgs(s string) ([]string, int) {
	var args []string
	depth, start := 0, 1
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return append(args, s[start:i]), i + 1
			}
		case ',':
			if depth == 1 {
				args = append(args, s[start:i])
				start = i + 1
			}
		}
	}
	return nil, -1
}

// varRE is Grafana's template variable syntax: $name, [[name:format]],
// ${name.fieldPath:format}.
var varRE = regexp.MustCompile(`\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}`)

func interpolate(sql string, vars map[string]Var) (string, error) {
	var errs []error
	out := varRE.ReplaceAllStringFunc(sql, func(match string) string {
		m := varRE.FindStringSubmatch(match)
		name, format := m[1]+m[2]+m[4], m[3]+m[6]
		if m[5] != "" {
			errs = append(errs, fmt.Errorf("variable %s: field paths are not supported", match))
			return match
		}
		v, ok := vars[name]
		if !ok {
			if strings.HasPrefix(name, "__") {
				return match // a macro or Grafana built-in, left for the next stage
			}
			errs = append(errs, fmt.Errorf("unknown variable %s", match))
			return match
		}
		s, err := formatVar(v, format)
		if err != nil {
			errs = append(errs, fmt.Errorf("variable %s: %w", match, err))
			return match
		}
		return s
	})
	return out, errors.Join(errs...)
}

func formatVar(v Var, format string) (string, error) {
	list := v.Multi || v.All || len(v.Values) != 1
	scalar := ""
	if len(v.Values) == 1 {
		scalar = v.Values[0]
	}
	each := func(f func(string) string) string {
		if !list {
			return f(scalar)
		}
		parts := make([]string, len(v.Values))
		for i, s := range v.Values {
			parts[i] = f(s)
		}
		return strings.Join(parts, ",")
	}
	switch format {
	case "": // the ClickHouse plugin's own format function
		if !list {
			return scalar, nil
		}
		return "'" + strings.Join(v.Values, "','") + "'", nil
	case "raw", "csv", "text":
		return each(func(s string) string { return s }), nil
	case "singlequote":
		return each(func(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }), nil
	case "sqlstring":
		return each(func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }), nil
	case "doublequote":
		return each(func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }), nil
	case "percentencode":
		if list {
			return PercentEncode("{" + strings.Join(v.Values, ",") + "}"), nil
		}
		return PercentEncode(scalar), nil
	}
	return "", fmt.Errorf("unsupported format %q", format)
}

// PercentEncode is Grafana's percentencode format (encodeURIComponent that
// also escapes !'()*): only A-Z a-z 0-9 - _ . ~ stay as they are, every
// other byte of the UTF-8 text becomes %XX. Inside a SQL string literal the
// result can hold no quote or backslash, so
// decodeURLComponent('${var:percentencode}') gives ClickHouse the value
// exactly, whatever it contains.
func PercentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

type macroFunc func(q Query, args []string) (string, error)

// The plugin's backend macros (pkg/macros), by name.
var macroFuncs = map[string]macroFunc{
	"fromTime":        func(q Query, _ []string) (string, error) { return dateTime(q.From), nil },
	"toTime":          func(q Query, _ []string) (string, error) { return dateTime(q.To), nil },
	"fromTime_ms":     func(q Query, _ []string) (string, error) { return dateTime64(q.From), nil },
	"toTime_ms":       func(q Query, _ []string) (string, error) { return dateTime64(q.To), nil },
	"timeFilter":      rangeFilter(dateTime),
	"timeFilter_ms":   rangeFilter(dateTime64),
	"dateFilter":      rangeFilter(date),
	"dateTimeFilter":  dateTimeFilter,
	"dt":              dateTimeFilter,
	"timeInterval":    timeInterval,
	"timeInterval_ms": timeIntervalMs,
	"interval_s": func(q Query, _ []string) (string, error) {
		return fmt.Sprintf("%d", int(math.Max(q.Interval.Seconds(), 1))), nil
	},
}

func date(t time.Time) string     { return fmt.Sprintf("toDate('%s')", t.UTC().Format("2006-01-02")) }
func dateTime(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
func dateTime64(t time.Time) string {
	return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", t.UnixMilli())
}

func wantArgs(args []string, n int) error {
	if len(args) != n {
		return fmt.Errorf("expected %d argument(s), received %d", n, len(args))
	}
	return nil
}

func rangeFilter(conv func(time.Time) string) macroFunc {
	return func(q Query, args []string) (string, error) {
		if err := wantArgs(args, 1); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s >= %s AND %s <= %s", args[0], conv(q.From), args[0], conv(q.To)), nil
	}
}

func dateTimeFilter(q Query, args []string) (string, error) {
	if err := wantArgs(args, 2); err != nil {
		return "", err
	}
	d, t := args[0], args[1]
	return fmt.Sprintf("(%s >= %s AND %s <= %s) AND (%s >= %s AND %s <= %s)",
		d, date(q.From), d, date(q.To), t, dateTime(q.From), t, dateTime(q.To)), nil
}

func timeInterval(q Query, args []string) (string, error) {
	if err := wantArgs(args, 1); err != nil {
		return "", err
	}
	return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", args[0], int(math.Max(q.Interval.Seconds(), 1))), nil
}

func timeIntervalMs(q Query, args []string) (string, error) {
	if err := wantArgs(args, 1); err != nil {
		return "", err
	}
	ms := math.Max(float64(q.Interval.Milliseconds()), 1)
	return fmt.Sprintf("toStartOfInterval(toDateTime64(%s, 3), INTERVAL %d millisecond)", args[0], int(ms)), nil
}

// expandMacros mirrors sqlutil.Interpolate: longer names first (so that
// $__timeFilter does not eat $__timeFilter_ms), arguments only when "("
// follows the name at once, brackets counted, arguments trimmed, and every
// identical occurrence replaced by the result.
func expandMacros(sql string, q Query) (string, error) {
	names := make([]string, 0, len(macroFuncs))
	for n := range macroFuncs {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := len(b) - len(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, name := range names {
		re := regexp.MustCompile(`\$__` + name + `\b`)
		for {
			loc := re.FindStringIndex(sql)
			if loc == nil {
				break
			}
			var args []string
			full := sql[loc[0]:loc[1]]
			if rest := sql[loc[1]:]; strings.HasPrefix(rest, "(") {
				raw, n := splitArgs(rest)
				if n < 0 {
					return "", fmt.Errorf("$__%s: missing closing bracket", name)
				}
				for _, a := range raw {
					args = append(args, strings.TrimSpace(a))
				}
				full += rest[:n]
			}
			res, err := macroFuncs[name](q, args)
			if err != nil {
				return "", fmt.Errorf("$__%s: %w", name, err)
			}
			sql = strings.ReplaceAll(sql, full, res)
		}
	}
	if m := leftoverRE.FindString(sql); m != "" {
		return "", fmt.Errorf("unsupported macro or variable %s", m)
	}
	return sql, nil
}

var leftoverRE = regexp.MustCompile(`\$__\w+`)
