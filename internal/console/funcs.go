package console

import (
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/queries"
)

// endedStatuses are the public statuses of ended events, in state order,
// derived from the event package (templates never spell a state).
func endedStatuses() []string {
	var out []string
	for st := event.StateQueued; st.Valid(); st++ {
		if st.Terminal() && !slices.Contains(out, st.Public()) {
			out = append(out, st.Public())
		}
	}
	return out
}

var funcs = template.FuncMap{
	"ended": endedStatuses,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return s[:1] + strings.ToLower(s[1:])
	},
	"abs": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"rel": relative,
	"relp": func(t *time.Time, now time.Time) string {
		if t == nil {
			return ""
		}
		return relative(*t, now)
	},
	"absp": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
	"dur":      duration,
	"pct":      func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"lower":    strings.ToLower,
	"has":      func(q url.Values, k, v string) bool { return slices.Contains(q[k], v) },
	"get":      func(q url.Values, k string) string { return q.Get(k) },
	"eventURL": func(id string) string { return "/ui/events/" + url.PathEscape(id) },
	"fnEvents": func(ns, fn string) string {
		return "/ui/events?" + url.Values{"namespace": {ns}, "function": {fn}}.Encode()
	},
	"fnStats": func(ns, fn string) string {
		return "/ui/stats?" + url.Values{"namespace": {ns}, "function": {fn}}.Encode()
	},
	"tracingURL": func(ns, fn string) string {
		return "/ui/functions/" + url.PathEscape(ns) + "/" + url.PathEscape(fn) + "/tracing"
	},
	"rangeURL": func(path string, q url.Values, r string) string {
		nq := url.Values{}
		for k, vs := range q {
			if k != "from" && k != "to" && k != "durations" {
				nq[k] = vs
			}
		}
		nq.Set("range", r)
		return path + "?" + nq.Encode()
	},
	"chartKey": func(ns, fn string) string { return ns + "/" + fn },
	"chartID":  func(ns, fn string) string { return "chart-" + fmt.Sprintf("%x", ns+"\x00"+fn) },
	"durs": func(d *queries.Durations) *queries.Durations {
		if d == nil {
			return &queries.Durations{}
		}
		return d
	},
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
	"localInput": func(q url.Values, k string) string {
		t, err := time.Parse(time.RFC3339Nano, q.Get(k))
		if err != nil {
			return ""
		}
		return t.UTC().Format("2006-01-02T15:04")
	},
}

// relative says how long ago (or from now) t is, coarsely.
func relative(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	suffix := " ago"
	if d < 0 {
		d, suffix = -d, " from now"
	}
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds%s", int(d/time.Second), suffix)
	case d < time.Hour:
		return fmt.Sprintf("%dm%s", int(d/time.Minute), suffix)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm%s", int(d/time.Hour), int(d%time.Hour/time.Minute), suffix)
	}
	return fmt.Sprintf("%dd%s", int(d/(24*time.Hour)), suffix)
}

// duration prints a duration readably at its scale.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	case d < time.Second:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
