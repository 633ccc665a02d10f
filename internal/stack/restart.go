package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Fault-injection hooks (the chaos test in testkit/chaos): a process of the
// stack is stopped by its own means (Process.Stop for a graceful stop,
// Process.Kill for kill -9), then Restart runs the same command again on
// the same work directory, so the collector finds its persistent queue,
// the scheduler its SQLite database and the plugin its spool.

// Restart starts p (the stack's Collector, API or Scheduler, which must
// have exited) again with the same command, environment and ports,
// appending to its log, waits until it is healthy, and puts the new
// process in its place. The collector is healthy only once ClickHouse has
// its schema: restart it while ClickHouse answers.
func (s *Stack) Restart(ctx context.Context, p *Process) error {
	var slot **Process
	var health string
	switch {
	case p == nil:
		return fmt.Errorf("restart: no process")
	case p == s.Collector:
		slot, health = &s.Collector, s.CollectorHealth
	case p == s.API:
		slot, health = &s.API, s.APIURL+"/healthz"
	case p == s.Scheduler:
		slot, health = &s.Scheduler, s.SchedulerURL+"/healthz"
	default:
		return fmt.Errorf("restart %s: not a process of this stack (already restarted?)", p.Name)
	}
	np, err := p.again()
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	*slot = np
	s.opts.Logf("restarted %s (pid %d)", np.Name, np.PID())
	if err := s.waitHealthy(ctx, np, health); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return nil
}

// PluginPID returns the process id of the statustrace plugin the scheduler
// runs now (the plugin binary in the scheduler's process group), or 0 when
// none runs. Linux only: it reads /proc.
func (s *Stack) PluginPID() (int, error) {
	if s.Scheduler == nil {
		return 0, nil
	}
	want, err := filepath.EvalSymlinks(s.opts.Bin.Plugin)
	if err != nil {
		return 0, fmt.Errorf("plugin binary: %w", err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pgrp, ok := processGroup(pid); !ok || pgrp != s.Scheduler.PID() {
			continue
		}
		exe, err := os.Readlink("/proc/" + e.Name() + "/exe")
		if err == nil && exe == want {
			return pid, nil
		}
	}
	return 0, nil
}

// processGroup reads a running (not zombie) process's group id from
// /proc/<pid>/stat: "pid (comm) state ppid pgrp ...", comm may hold spaces.
func processGroup(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	st := string(b)
	i := strings.LastIndexByte(st, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(st[i+1:])
	if len(f) < 3 || f[0] == "Z" {
		return 0, false
	}
	pgrp, err := strconv.Atoi(f[2])
	return pgrp, err == nil
}
