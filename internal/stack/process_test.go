package stack

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitFile waits until path has content (the child wrote its pids).
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.Count(string(b), "\n") >= 1 {
			return string(b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never written", path)
	return ""
}

func alive(pid int) bool {
	// A zombie is not running: check its state, not only kill(pid, 0).
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// A process that started a child (as the scheduler starts its plugin):
// Stop ends both, and a SIGTERM death is a clean stop.
func TestStopEndsTheWholeGroup(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	// The child ignores SIGTERM, so only the group SIGKILL after the
	// parent's exit can end it.
	p, err := startProcess("parent", "/bin/bash", []string{"-c", `(trap '' TERM; exec sleep 300) & echo $! > ` + pids + `; wait`}, nil, dir, filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(waitFile(t, pids)))
	if err != nil {
		t.Fatal(err)
	}
	if !alive(child) {
		t.Fatal("child not running")
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if alive(child) {
		t.Errorf("child %d outlived Stop", child)
	}
	if p.GroupAlive() {
		t.Error("process group still has members")
	}
	// Idempotent.
	if err := p.Stop(time.Second); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

// A process that ignores SIGTERM is killed after the grace period, and
// Stop says so.
func TestStopKillsAfterGrace(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	p, err := startProcess("stubborn", "/bin/bash", []string{"-c", `trap '' TERM; echo x > ` + ready + `; while :; do sleep 0.05; done`}, nil, dir, filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	waitFile(t, ready)
	start := time.Now()
	err = p.Stop(300 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not exit") {
		t.Fatalf("want a 'did not exit' error, got %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Stop took %s", time.Since(start))
	}
	if ok, _ := p.Exited(); !ok {
		t.Error("process not reaped")
	}
	if p.GroupAlive() {
		t.Error("process group still has members")
	}
}

// A process that fails on its own reports its exit status and log.
func TestExitStatusReported(t *testing.T) {
	dir := t.TempDir()
	p, err := startProcess("failing", "/bin/bash", []string{"-c", "echo boom >&2; exit 3"}, nil, dir, filepath.Join(dir, "failing.log"))
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	err = p.Stop(time.Second)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("want exit status 3, got %v", err)
	}
	if got := Tail(p.LogPath, 5); got != "boom" {
		t.Errorf("log tail = %q", got)
	}
}

// The SIGTERM a clean stop sends is not an error; the environment given is
// added to the parent's.
func TestCleanStopAndEnv(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	p, err := startProcess("env", "/bin/bash", []string{"-c", `echo "$STACK_TEST_VAR $HOME" > ` + out + `; sleep 300`}, []string{"STACK_TEST_VAR=hello"}, dir, filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(waitFile(t, out))
	if want := "hello " + os.Getenv("HOME"); got != want {
		t.Errorf("env = %q, want %q", got, want)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
}

func TestExporterEnv(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		want []string
	}{
		{"http://127.0.0.1:8123", []string{"CLICKHOUSE_ENDPOINT=http://127.0.0.1:8123", "CLICKHOUSE_USER=default", "CLICKHOUSE_PASSWORD="}},
		{"clickhouse://u:p%40ss@ch:9000/db?dial_timeout=5s", []string{"CLICKHOUSE_ENDPOINT=clickhouse://ch:9000?dial_timeout=5s", "CLICKHOUSE_USER=u", "CLICKHOUSE_PASSWORD=p@ss"}},
		{"https://reader@ch.internal:8443/default?secure=true", []string{"CLICKHOUSE_ENDPOINT=https://ch.internal:8443?secure=true", "CLICKHOUSE_USER=reader", "CLICKHOUSE_PASSWORD="}},
	} {
		got, err := ExporterEnv(tc.dsn)
		if err != nil {
			t.Errorf("%s: %v", tc.dsn, err)
			continue
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s:\n got %v\nwant %v", tc.dsn, got, tc.want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8123", "::"} {
		if _, err := ExporterEnv(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
	_, err := ExporterEnv("clickhouse://u:secret@/x")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("an error that hides the password, got %v", err)
	}
}

func TestWithDatabase(t *testing.T) {
	for dsn, want := range map[string]string{
		"http://127.0.0.1:8123":                          "http://127.0.0.1:8123/db1",
		"http://127.0.0.1:8123/default?compress=lz4":     "http://127.0.0.1:8123/db1?compress=lz4",
		"clickhouse://u:p@ch:9000/other?dial_timeout=5s": "clickhouse://u:p@ch:9000/db1?dial_timeout=5s",
	} {
		got, err := WithDatabase(dsn, "db1")
		if err != nil || got != want {
			t.Errorf("WithDatabase(%q) = %q, %v; want %q", dsn, got, err, want)
		}
	}
	if _, err := WithDatabase("nonsense", "db1"); err == nil {
		t.Error("want an error for a DSN without scheme and host")
	}
}

// Kill ends the process at once (kill -9) but not its group; again runs the
// same command once more, appending to its log.
func TestKillAndAgain(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	log := filepath.Join(dir, "log")
	// The child ignores SIGTERM and outlives its parent's kill -9.
	p, err := startProcess("twice", "/bin/bash", []string{"-c", `echo run; (trap '' TERM; exec sleep 300) & echo $! >> ` + pids + `; wait`}, nil, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(waitFile(t, pids)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.again(); err == nil {
		t.Fatal("again while running: want an error")
	}
	p.Kill()
	if ok, _ := p.Exited(); !ok {
		t.Fatal("not reaped after Kill")
	}
	if !alive(child) {
		t.Error("Kill ended the whole group; want only the process (as kill -9)")
	}
	q, err := p.again()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(Tail(log, 10), "run") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := Tail(log, 10); got != "run\nrun" {
		t.Errorf("log after a restart = %q, want both runs' lines", got)
	}
	// Each run is a process group of its own: stopping the first run's
	// (killed) leader still ends what it left in its group.
	if err := q.Stop(5 * time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
	_ = p.Stop(time.Second) // its exit status is the SIGKILL
	if alive(child) {
		t.Errorf("child %d of the killed run outlived Stop of its group", child)
	}
}
