// Package chlocal serves ClickHouse's HTTP interface and native TCP protocol
// in front of the embedded ClickHouse engine (native chDB, or chDB compiled to
// WebAssembly, run by Node 24 in a child process). Machines without a ClickHouse server (CI, a laptop without Docker)
// use it so that every Go component talks to it through clickhouse-go exactly
// as it talks to a server.
package chlocal

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// EngineInfo is what the engine reports once it is ready.
type EngineInfo struct {
	Engine      string `json:"engine"` // native or wasm
	Version     string `json:"version"`
	DisplayName string `json:"displayName"`
	Timezone    string `json:"timezone"`
}

// Statement is one SQL statement and the output format of its result.
type Statement struct {
	SQL    string `json:"sql"`
	Format string `json:"format,omitempty"`
}

// request is the header of one frame sent to engine.mjs.
type request struct {
	Op         string      `json:"op"`
	Session    string      `json:"session,omitempty"`
	Statements []Statement `json:"statements,omitempty"`
	File       string      `json:"file,omitempty"`
}

// Result is the engine's answer to one Exec.
type Result struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Ready bool   `json:"ready"`
	Rows  uint64 `json:"rows"`
	Bytes uint64 `json:"bytes"`
	// What the query read from storage; nil when the engine cannot tell
	// (the native engine's binding reports result rows only).
	ScannedRows  *uint64 `json:"scannedRows"`
	ScannedBytes *uint64 `json:"scannedBytes"`
	Elapsed      float64 `json:"elapsed"`
	Data         []byte  `json:"-"`
	EngineInfo
}

// ErrEngineDown is returned once the engine process has exited.
var ErrEngineDown = errors.New("chlocal: engine process is not running")

// Engine drives one engine.mjs child process. chDB runs one statement at a
// time, so Engine serialises every call.
type Engine struct {
	// Timeout bounds one call. chDB-wasm can deadlock (e.g. on DROP ... SYNC);
	// a hung engine would hang every client, so past it the engine is killed
	// and the endpoint reports itself down instead.
	Timeout time.Duration

	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	info   EngineInfo
	broken error
	done   chan struct{}
}

// StartEngine launches `node script` and waits until the engine is ready.
// stderr receives the engine's own log lines.
func StartEngine(ctx context.Context, nodePath, script string, stderr io.Writer) (*Engine, error) {
	cmd := exec.Command(nodePath, script)
	cmd.Stderr = stderr
	// The engine must die with us: it exits when its stdin closes, and
	// Pdeathsig covers a parent killed with SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("engine stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("engine stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start engine %s %s: %w", nodePath, script, err)
	}
	e := &Engine{cmd: cmd, stdin: stdin, stdout: bufio.NewReaderSize(stdout, 1<<20), done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(e.done)
	}()

	ready := make(chan error, 1)
	go func() {
		res, err := e.readFrame()
		if err == nil && !res.Ready {
			err = fmt.Errorf("unexpected first frame: %+v", res)
		}
		if err == nil {
			e.info = res.EngineInfo
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = e.Close()
			return nil, fmt.Errorf("engine did not start: %w", err)
		}
		return e, nil
	case <-ctx.Done():
		_ = e.Close()
		return nil, fmt.Errorf("engine start: %w", ctx.Err())
	}
}

// Info returns the engine's version, display name and time zone.
func (e *Engine) Info() EngineInfo { return e.info }

// Done is closed when the engine process has exited.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Exec runs the statements in order on the session's connection (the shared
// one when session is empty). When file is set, data is written to that path
// of the engine's in-memory file system first (for INSERT ... FROM INFILE) and
// removed afterwards. The result carries the last statement's output.
func (e *Engine) Exec(session string, stmts []Statement, file string, data []byte) (Result, error) {
	return e.call(request{Op: "exec", Session: session, Statements: stmts, File: file}, data)
}

// CloseSession frees a session's connection (temporary tables, settings).
func (e *Engine) CloseSession(session string) error {
	_, err := e.call(request{Op: "close", Session: session}, nil)
	return err
}

func (e *Engine) call(req request, body []byte) (Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.broken != nil {
		return Result{}, e.broken
	}
	if e.Timeout > 0 {
		t := time.AfterFunc(e.Timeout, func() { _ = e.cmd.Process.Kill() })
		defer t.Stop()
	}
	if err := e.writeFrame(req, body); err != nil {
		e.broken = fmt.Errorf("%w: %v", ErrEngineDown, err)
		return Result{}, e.broken
	}
	res, err := e.readFrame()
	if err != nil {
		e.broken = fmt.Errorf("%w: %v", ErrEngineDown, err)
		return Result{}, e.broken
	}
	return res, nil
}

func (e *Engine) writeFrame(req request, body []byte) error {
	hdr, err := json.Marshal(req)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, 8+len(hdr))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(hdr)))
	buf = append(buf, hdr...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(body)))
	if _, err := e.stdin.Write(buf); err != nil {
		return err
	}
	if len(body) > 0 {
		if _, err := e.stdin.Write(body); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) readFrame() (Result, error) {
	var res Result
	hdr, err := readChunk(e.stdout)
	if err != nil {
		return res, fmt.Errorf("read header: %w", err)
	}
	if err := json.Unmarshal(hdr, &res); err != nil {
		return res, fmt.Errorf("decode header: %w", err)
	}
	if res.Data, err = readChunk(e.stdout); err != nil {
		return res, fmt.Errorf("read body: %w", err)
	}
	return res, nil
}

func readChunk(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.LittleEndian.Uint32(n[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Close stops the engine process: closing stdin asks it to exit (the native
// engine then closes its data folder cleanly), a kill after closeGrace makes
// sure.
func (e *Engine) Close() error {
	_ = e.stdin.Close()
	select {
	case <-e.done:
	case <-time.After(closeGrace):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
	return nil
}

// closeGrace is how long Close waits for the engine to exit by itself.
const closeGrace = 20 * time.Second
