package queries

import (
	"strings"
	"testing"
)

func TestEverySQLRenders(t *testing.T) {
	for _, v := range append(append([]string{}, Views...), named...) {
		s := SQL(v)
		if s == "" {
			t.Errorf("%s: empty", v)
		}
		if strings.Contains(s, "{{") || strings.Contains(s, "<no value>") {
			t.Errorf("%s: unrendered template:\n%s", v, s)
		}
		// trace_spans reads otel_traces, which has no tenant column: its
		// trace ID comes from an event Get found in the caller's scope.
		if v != "trace_spans" && !strings.Contains(s, "{tenant:String}") {
			t.Errorf("%s does not filter by tenant", v)
		}
	}
	if len(compiled.page) != 4 {
		t.Fatalf("%d event_page variants, want 4", len(compiled.page))
	}
}

// Every read must stay inside the retention window: each query that names a
// data table also applies the retention cutoff.
func TestEveryQueryAppliesRetention(t *testing.T) {
	for name, s := range compiled.sql {
		if !strings.Contains(s, "toIntervalSecond((SELECT ifNull(toUInt64OrNull(argMax(value, updated_at))") {
			t.Errorf("%s does not apply the retention cutoff", name)
		}
	}
}

func TestViewStatements(t *testing.T) {
	stmts, err := ViewStatements(InstallOptions{Database: "st", Cluster: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) != len(Views) || !strings.HasPrefix(stmts[0], "CREATE OR REPLACE VIEW `st`.`event_status` ON CLUSTER `c1` AS\n") {
		t.Fatalf("unexpected statements: %q", stmts[0][:80])
	}
	for _, bad := range []InstallOptions{{Database: "a;b"}, {Database: "x", Cluster: "c`d"}} {
		if _, err := ViewStatements(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// A view that ends in a subquery needs an alias there: otherwise the
// COMMENT that Install appends would parse as the subquery's alias.
func TestViewsDoNotEndInAnUnaliasedSubquery(t *testing.T) {
	for _, v := range Views {
		lines := strings.Split(strings.TrimSpace(SQL(v)), "\n")
		if strings.TrimSpace(lines[len(lines)-1]) == ")" {
			t.Errorf("%s ends in ')': give the subquery an alias", v)
		}
	}
}
