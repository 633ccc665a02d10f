package stack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is one child process of the stack, in a process group of its own
// so that stopping it also stops what it started (the scheduler's plugin),
// and so that a terminal's Ctrl-C reaches only the parent, which then stops
// the children in order (scheduler first so it flushes, collector last).
type Process struct {
	Name    string
	LogPath string

	// What started it, so that Stack.Restart can run it again.
	path, dir string
	args, env []string

	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid once done is closed
}

// startProcess runs path with args and env (added to the parent's), writing
// stdout and stderr to logPath.
func startProcess(name, path string, args, env []string, dir, logPath string) (*Process, error) {
	return launch(name, path, args, env, dir, logPath, os.O_TRUNC)
}

// launch starts the process; logMode is os.O_TRUNC for a first start and
// os.O_APPEND for a restart (the log keeps the previous run's lines).
func launch(name, path string, args, env []string, dir, logPath string, logMode int) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|logMode, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the parent dies without stopping us (kill -9), the kernel
		// stops the child; the plugin notices its host is gone by itself.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, path, err)
	}
	p := &Process{Name: name, LogPath: logPath, path: path, dir: dir, args: args, env: env,
		cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id (= its process group id).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and its exit error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// again starts the same command once more, appending to the same log.
func (p *Process) again() (*Process, error) {
	if ok, _ := p.Exited(); !ok {
		return nil, fmt.Errorf("%s (pid %d) is still running", p.Name, p.PID())
	}
	return launch(p.Name, p.path, p.args, p.env, p.dir, p.LogPath, os.O_APPEND)
}

// Kill sends SIGKILL to the process itself (not its group: a scheduler's
// plugin is left to notice on its own, as after a real kill -9) and waits
// until it has exited.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM to the process, waits up to grace for it to exit,
// then SIGKILLs its process group. It also SIGKILLs whatever is
// left in the group after a clean exit, so nothing outlives Stop. The error
// is the process's exit status unless it was a clean exit on SIGTERM.
func (p *Process) Stop(grace time.Duration) error {
	pgid := p.PID()
	var killed error
	if ok, _ := p.Exited(); !ok {
		// SIGTERM to the leader only: it stops its own children in order
		// (the scheduler flushes its plugin before stopping it).
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-p.done:
			t.Stop()
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
			killed = fmt.Errorf("%s did not exit within %s of SIGTERM; killed (log: %s)", p.Name, grace, p.LogPath)
		}
	}
	// Stragglers of the group (none when the process stopped its children).
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err == nil {
		waitGroupGone(pgid, 5*time.Second)
	}
	if killed != nil {
		return killed
	}
	var exitErr *exec.ExitError
	if errors.As(p.err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil // died of the SIGTERM we sent: a stop, not a failure
		}
		return fmt.Errorf("%s exited: %w (log: %s)", p.Name, p.err, p.LogPath)
	}
	return p.err
}

// waitGroupGone waits until no process is left in the process group.
func waitGroupGone(pgid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// GroupAlive reports whether any process is left in the process group of p
// (for tests that prove nothing outlives Stop).
func (p *Process) GroupAlive() bool {
	return !errors.Is(syscall.Kill(-p.PID(), 0), syscall.ESRCH)
}
