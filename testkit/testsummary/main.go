// Command testsummary reads `go test -json` on stdin and prints what a
// person needs: each package's result line, the output of failed tests, and
// at the end every skipped test with its reason (tests that skip, e.g.
// without Docker or promtool, are otherwise invisible). It exits non-zero
// when a test or build failed, so `go test -json ./... | testsummary` can
// stand for `go test ./...` (use pipefail for go test's own status).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of test2json.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type key struct{ pkg, test string }

type skip struct {
	key
	reason string
}

func main() {
	failed, err := summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// summarize copies the useful part of in to out and reports whether
// anything failed.
func summarize(in io.Reader, out io.Writer) (bool, error) {
	buf := map[key][]string{} // a running test's output, printed if it fails
	var skips []skip
	failed := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, string(line)) // not test2json (e.g. a go vet line): as is
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			fmt.Fprint(out, e.Output)
		case "output":
			if e.Test == "" {
				// Package level: its ok/FAIL line and what it printed
				// outside tests; test2json's framing lines are dropped.
				if t := strings.TrimSpace(e.Output); t != "PASS" && t != "FAIL" && !strings.HasPrefix(t, "=== ") && !strings.HasPrefix(t, "--- ") {
					fmt.Fprint(out, e.Output)
				}
				continue
			}
			buf[k] = append(buf[k], e.Output)
		case "skip":
			if e.Test != "" {
				skips = append(skips, skip{k, skipReason(buf[k])})
			}
			delete(buf, k)
		case "fail":
			failed = true
			if e.Test != "" {
				fmt.Fprint(out, strings.Join(buf[k], ""))
			}
			delete(buf, k)
		case "pass":
			delete(buf, k)
		}
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	printSkips(out, skips)
	return failed, nil
}

// skipReason is the message t.Skip printed: the lines after the test's
// "=== RUN"/"=== CONT" framing, without the "--- SKIP" line.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	r := strings.Join(parts, " ")
	if len(r) > 200 {
		r = r[:200] + "…"
	}
	return r
}

func printSkips(out io.Writer, skips []skip) {
	if len(skips) == 0 {
		fmt.Fprintln(out, "\nskipped: none")
		return
	}
	sort.Slice(skips, func(i, j int) bool {
		if skips[i].pkg != skips[j].pkg {
			return skips[i].pkg < skips[j].pkg
		}
		return skips[i].test < skips[j].test
	})
	fmt.Fprintf(out, "\nskipped: %d tests\n", len(skips))
	for _, s := range skips {
		fmt.Fprintf(out, "  %s %s: %s\n", s.pkg, s.test, s.reason)
	}
}
