package clickhousetraces

import (
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestSpanRange(t *testing.T) {
	td := ptrace.NewTraces()
	n := 0
	for r := range 3 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprint("svc", r))
		for s := range r + 1 {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(fmt.Sprintf("scope%d.%d", r, s))
			for range 2 {
				ss.Spans().AppendEmpty().SetName(fmt.Sprint("span", n))
				n++
			}
		}
	}
	names := func(td ptrace.Traces) string {
		var out []string
		for r := 0; r < td.ResourceSpans().Len(); r++ {
			rs := td.ResourceSpans().At(r)
			svc, _ := rs.Resource().Attributes().Get("service.name")
			for s := 0; s < rs.ScopeSpans().Len(); s++ {
				ss := rs.ScopeSpans().At(s)
				for k := 0; k < ss.Spans().Len(); k++ {
					out = append(out, svc.Str()+"/"+ss.Scope().Name()+"/"+ss.Spans().At(k).Name())
				}
			}
		}
		return strings.Join(out, " ")
	}
	all := strings.Fields(names(td))
	for lo := 0; lo <= n; lo++ {
		for hi := lo; hi <= n; hi++ {
			part := spanRange(td, lo, hi)
			if got, want := names(part), strings.Join(all[lo:hi], " "); got != want {
				t.Fatalf("[%d,%d): %q, want %q", lo, hi, got, want)
			}
			if part.SpanCount() != hi-lo {
				t.Fatalf("[%d,%d): %d spans", lo, hi, part.SpanCount())
			}
		}
	}
}
