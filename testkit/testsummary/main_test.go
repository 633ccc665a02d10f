package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Real go test -json output from a throwaway module: a pass, a fail, a skip
// with a reason and a skipped subtest.
func TestSummarizesRealGoTestOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir+"/go.mod", "module example.com/m\n\ngo 1.22\n")
	write(t, dir+"/m_test.go", `package m

import "testing"

func TestPasses(t *testing.T) { t.Log("noise a passing test prints") }
func TestFails(t *testing.T)  { t.Error("the failure message") }
func TestSkips(t *testing.T)  { t.Skip("promtool not installed") }
func TestParent(t *testing.T) {
	t.Run("child", func(t *testing.T) { t.Skipf("no Docker: %d", 42) })
}
`)
	cmd := exec.Command("go", "test", "-json", "-count=1", ".")
	cmd.Dir = dir
	raw, _ := cmd.Output() // fails: one test fails
	var out strings.Builder
	failed, err := summarize(strings.NewReader(string(raw)), &out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !failed {
		t.Error("a failed test was not reported as failure")
	}
	for _, want := range []string{
		"the failure message",
		"FAIL\texample.com/m",
		"skipped: 2 tests",
		"example.com/m TestSkips: m_test.go:7: promtool not installed",
		"example.com/m TestParent/child: m_test.go:9: no Docker: 42",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "noise a passing test prints") || strings.Contains(got, "TestPasses") {
		t.Errorf("summary shows passing tests' output:\n%s", got)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := writeFile(path, s); err != nil {
		t.Fatal(err)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
