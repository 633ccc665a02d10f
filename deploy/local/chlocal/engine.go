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
	"os"
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
	ID         uint64      `json:"id"`
	Session    string      `json:"session,omitempty"`
	Lane       string      `json:"lane,omitempty"`
	Statements []Statement `json:"statements,omitempty"`
	Reset      []Statement `json:"reset,omitempty"`
	File       string      `json:"file,omitempty"`
}

// Result is the engine's answer to one Exec.
type Result struct {
	ID    uint64 `json:"id"` // the request's
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

// Engine drives one engine script child process. Calls may overlap: each
// frame carries an id that its answer repeats, and one goroutine hands the
// answers out; the engine script decides what runs in parallel.
type Engine struct {
	// Timeout bounds one call. chDB-wasm can deadlock (e.g. on DROP ... SYNC);
	// a hung engine would hang every client, so past it the engine is killed
	// and the endpoint reports itself down instead.
	Timeout time.Duration

	wmu    sync.Mutex // one frame written at a time
	mu     sync.Mutex // the fields below
	nextID uint64
	calls  map[uint64]chan Result // waiting for their answer
	broken error

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	info   EngineInfo
	done   chan struct{}
}

// StartEngine launches `node script` and waits until the engine is ready.
// stderr receives the engine's own log lines (and anything it prints).
//
// The frames travel on file descriptors 3 (requests) and 4 (answers), not
// on stdin/stdout: libchdb reads INSERT data from its stdin whenever bytes
// wait there, and would take the next request's frame for it. The engine's
// stdin is /dev/null.
func StartEngine(ctx context.Context, nodePath, script string, stderr io.Writer) (*Engine, error) {
	cmd := exec.Command(nodePath, script)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// The engine must die with us: it exits when its request pipe closes,
	// and Pdeathsig covers a parent killed with SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("engine request pipe: %w", err)
	}
	ansR, ansW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, fmt.Errorf("engine answer pipe: %w", err)
	}
	cmd.ExtraFiles = []*os.File{reqR, ansW} // fds 3 and 4
	err = cmd.Start()
	reqR.Close() // the child's ends
	ansW.Close()
	if err != nil {
		reqW.Close()
		ansR.Close()
		return nil, fmt.Errorf("start engine %s %s: %w", nodePath, script, err)
	}
	stdin, stdout := io.WriteCloser(reqW), io.Reader(ansR)
	e := &Engine{cmd: cmd, stdin: stdin, stdout: bufio.NewReaderSize(stdout, 1<<20), done: make(chan struct{}),
		calls: map[uint64]chan Result{}}
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
		go e.readLoop()
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
// one when session is empty), then the reset statements on the same
// connection whatever happened (they put back what the request changed, in
// the same call, so no other request runs in between). When file is set,
// data is written to that path first (for INSERT ... FROM INFILE; the native
// engine substitutes a file of its own) and removed afterwards. The result
// carries the last statement's output.
func (e *Engine) Exec(session string, stmts, reset []Statement, file string, data []byte) (Result, error) {
	return e.call(request{Op: "exec", Session: session, Statements: stmts, Reset: reset, File: file}, data)
}

// ExecAsyncInsert is Exec, without a session, for an INSERT the client
// sent with async_insert: the native engine runs it on a connection of its
// own (lane "async") beside the shared one. A client asks for async_insert
// when it does not need its rows at once (the otel_traces exporter's bulk
// inserts), and on the shared connection every status insert and lookup
// queued behind it. The engine does not buffer the insert (it reads the
// rows from a file, which ClickHouse inserts synchronously); the rows are
// there when it returns, as with wait_for_async_insert. The wasm engine,
// one statement at a time, ignores the lane.
func (e *Engine) ExecAsyncInsert(stmts, reset []Statement, file string, data []byte) (Result, error) {
	return e.call(request{Op: "exec", Lane: "async", Statements: stmts, Reset: reset, File: file}, data)
}

// CloseSession frees a session's connection (temporary tables, settings).
func (e *Engine) CloseSession(session string) error {
	_, err := e.call(request{Op: "close", Session: session}, nil)
	return err
}

func (e *Engine) call(req request, body []byte) (Result, error) {
	e.mu.Lock()
	if e.broken != nil {
		err := e.broken
		e.mu.Unlock()
		return Result{}, err
	}
	e.nextID++
	req.ID = e.nextID
	answer := make(chan Result, 1)
	e.calls[req.ID] = answer
	e.mu.Unlock()

	if e.Timeout > 0 {
		t := time.AfterFunc(e.Timeout, func() { _ = e.cmd.Process.Kill() })
		defer t.Stop()
	}
	e.wmu.Lock()
	err := e.writeFrame(req, body)
	e.wmu.Unlock()
	if err != nil {
		e.fail(err)
	}
	if res, ok := <-answer; ok {
		return res, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return Result{}, e.broken
}

// readLoop hands each answer to its caller. When the engine's output ends
// or cannot be read, every waiting call fails.
func (e *Engine) readLoop() {
	for {
		res, err := e.readFrame()
		if err != nil {
			e.fail(err)
			return
		}
		e.mu.Lock()
		answer := e.calls[res.ID]
		delete(e.calls, res.ID)
		e.mu.Unlock()
		if answer == nil {
			e.fail(fmt.Errorf("answer to unknown request %d", res.ID))
			return
		}
		answer <- res
	}
}

// fail marks the engine down and ends every waiting call.
func (e *Engine) fail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.broken == nil {
		e.broken = fmt.Errorf("%w: %v", ErrEngineDown, err)
	}
	for id, answer := range e.calls {
		close(answer)
		delete(e.calls, id)
	}
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
