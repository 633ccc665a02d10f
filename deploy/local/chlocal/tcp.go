package chlocal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	goproto "github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// TCPServer serves ClickHouse's native TCP protocol (the production default,
// port 9000) in front of the same engine and request handling as the HTTP
// interface. Packets are decoded and encoded with ch-go's proto and compress
// packages; data blocks with clickhouse-go's block codec, which knows every
// column type (ch-go's automatic columns do not: Map(LowCardinality(String),
// String), Tuple, Nested).
type TCPServer struct {
	srv *Server
	log *slog.Logger

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
}

// NewTCPServer serves the native protocol with srv's engine.
func NewTCPServer(srv *Server) *TCPServer {
	return &TCPServer{srv: srv, log: srv.log, conns: map[net.Conn]struct{}{}}
}

// Serve accepts connections until Close; it returns nil after Close.
func (t *TCPServer) Serve(ln net.Listener) error {
	t.mu.Lock()
	t.ln = ln
	t.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			t.mu.Lock()
			closed := t.closed
			t.mu.Unlock()
			if closed {
				return nil
			}
			return fmt.Errorf("native TCP accept: %w", err)
		}
		t.mu.Lock()
		t.conns[c] = struct{}{}
		t.mu.Unlock()
		go func() {
			defer func() {
				// A bug in one connection's handling must not take the
				// endpoint (and every other client) down.
				if p := recover(); p != nil {
					t.log.Error("native connection handler panicked", "panic", p, "stack", string(debug.Stack()))
				}
				_ = c.Close()
				t.mu.Lock()
				delete(t.conns, c)
				t.mu.Unlock()
			}()
			tc := &tcpConn{srv: t.srv, log: t.log.With("conn", c.RemoteAddr().String()), conn: c,
				r: chproto.NewReader(c), buf: new(chproto.Buffer)}
			if err := tc.serve(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				tc.log.Debug("native connection ended", "err", err)
			}
		}()
	}
}

// Close stops accepting and closes every open connection.
func (t *TCPServer) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.ln != nil {
		_ = t.ln.Close()
	}
	for c := range t.conns {
		_ = c.Close()
	}
}

// tcpConn is one client connection; packets on it are handled in order.
type tcpConn struct {
	srv  *Server
	log  *slog.Logger
	conn net.Conn
	r    *chproto.Reader
	buf  *chproto.Buffer

	ver      int    // negotiated protocol revision
	database string // from the client's hello
	colCtx   *column.ServerContext
	// pending is a packet code read while a query ran (see watch).
	pending *chproto.ClientCode
}

// errCancelled ends a query the client cancelled.
var errCancelled = errors.New("query cancelled by the client")

func (c *tcpConn) serve() error {
	if err := c.handshake(); err != nil {
		return err
	}
	for {
		code, err := c.packet()
		if err != nil {
			return err
		}
		switch code {
		case chproto.ClientCodePing:
			chproto.ServerCodePong.Encode(c.buf)
			if err := c.flush(); err != nil {
				return err
			}
		case chproto.ClientCodeQuery:
			if err := c.query(); err != nil {
				return err
			}
		case chproto.ClientCodeCancel:
			// A cancel that arrives after the query ended: nothing to do.
		case chproto.ClientTablesStatusRequest:
			if err := c.tablesStatus(); err != nil {
				return err
			}
		default:
			return c.fatal(badRequest(101, "unexpected packet %s outside a query", code))
		}
	}
}

// tablesStatus answers a TablesStatusRequest. A ClickHouse server sends one
// before it queries a remote shard (remote(), cluster(), Distributed tables)
// to learn each table's replication delay; this endpoint has no replication,
// so every table is reported as not replicated (which the server reads as
// "up to date").
func (c *tcpConn) tablesStatus() error {
	n, err := c.r.UVarInt()
	if err != nil {
		return fmt.Errorf("read tables status request: %w", err)
	}
	const maxTables = 1 << 16
	if n > maxTables {
		return c.fatal(badRequest(101, "tables status request for %d tables (at most %d)", n, maxTables))
	}
	type table struct{ db, name string }
	tables := make([]table, 0, n)
	for range n {
		db, err := c.r.Str()
		if err != nil {
			return fmt.Errorf("read tables status request: %w", err)
		}
		name, err := c.r.Str()
		if err != nil {
			return fmt.Errorf("read tables status request: %w", err)
		}
		tables = append(tables, table{db, name})
	}
	chproto.ServerCodeTablesStatus.Encode(c.buf)
	c.buf.PutUVarInt(uint64(len(tables)))
	for _, t := range tables {
		c.buf.PutString(t.db)
		c.buf.PutString(t.name)
		c.buf.PutBool(false) // is_replicated; nothing else follows for a non-replicated table
	}
	return c.flush()
}

func (c *tcpConn) packet() (chproto.ClientCode, error) {
	if c.pending != nil {
		code := *c.pending
		c.pending = nil
		return code, nil
	}
	n, err := c.r.UVarInt()
	if err != nil {
		return 0, err
	}
	code := chproto.ClientCode(n)
	if !code.IsAClientCode() && code != clientCodeScalar {
		return 0, c.fatal(badRequest(101, "unknown packet %d from client", n))
	}
	return code, nil
}

func (c *tcpConn) flush() error {
	if _, err := c.conn.Write(c.buf.Buf); err != nil {
		return err
	}
	c.buf.Reset()
	return nil
}

func (c *tcpConn) handshake() error {
	code, err := c.packet()
	if err != nil {
		return err
	}
	if code != chproto.ClientCodeHello {
		return c.fatal(badRequest(101, "expected the client's hello, got %s", code))
	}
	var hello chproto.ClientHello
	if err := hello.Decode(c.r); err != nil {
		return fmt.Errorf("decode hello: %w", err)
	}
	c.ver = min(hello.ProtocolVersion, chproto.Version)
	if !chproto.FeatureSettingsSerializedAsStrings.In(c.ver) {
		return c.fatal(badRequest(101, "client protocol revision %d is too old (the local endpoint needs %d or later)",
			hello.ProtocolVersion, chproto.FeatureSettingsSerializedAsStrings.Version()))
	}
	c.database = hello.Database
	info := c.srv.engine.Info()
	major, minor, patch := splitVersion(info.Version)
	sh := chproto.ServerHello{Name: "ClickHouse", Major: major, Minor: minor, Patch: patch,
		Revision: chproto.Version, Timezone: info.Timezone, DisplayName: info.DisplayName}
	sh.EncodeAware(c.buf, c.ver)
	if err := c.flush(); err != nil {
		return err
	}
	if chproto.FeatureAddendum.In(c.ver) {
		if _, err := c.r.Str(); err != nil { // quota key: no quotas here
			return fmt.Errorf("read addendum: %w", err)
		}
	}
	return nil
}

// splitVersion parses "26.7.1.1" into 26, 7, 1.
func splitVersion(v string) (major, minor, patch int) {
	parts := strings.Split(v, ".")
	n := func(i int) int {
		if i >= len(parts) {
			return 0
		}
		x, _ := strconv.Atoi(parts[i])
		return x
	}
	return n(0), n(1), n(2)
}

// exception sends a ClickHouse exception with the error's real code.
func (c *tcpConn) exception(e *chError) error {
	msg := strings.TrimSpace(e.msg)
	if m := exceptionPrefixRe.FindStringIndex(msg); m != nil {
		msg = msg[m[1]:]
	}
	chproto.ServerCodeException.Encode(c.buf)
	ex := chproto.Exception{Code: chproto.Error(e.code), Name: "DB::Exception", Message: msg}
	ex.EncodeAware(c.buf, c.ver)
	return c.flush()
}

var exceptionPrefixRe = regexp.MustCompile(`^Code:\s*\d+\.\s*(DB::Exception:\s*)?`)

// fatal sends an exception and ends the connection (the stream cannot be
// resynchronised after a packet it does not understand).
func (c *tcpConn) fatal(e *chError) error {
	_ = c.exception(e)
	return errors.New(e.msg)
}

// query handles one Query packet: the client's data blocks that follow it
// (external tables, then INSERT data), the engine call, and the answer.
func (c *tcpConn) query() error {
	q, err := decodeQuery(c.r, c.ver)
	if err != nil {
		return fmt.Errorf("decode query: %w", err)
	}
	compressed := q.Compression == chproto.CompressionEnabled
	// External tables precede the empty block that ends the query packet.
	for {
		blk, name, err := c.readData(compressed)
		if err != nil {
			return c.afterRead(err)
		}
		if blk.Rows() == 0 && len(blk.Columns) == 0 {
			break
		}
		return c.fatal(badRequest(48, "external table %q: not supported by the local endpoint", name))
	}

	params := paramSet{Values: map[string][]string{}}
	if c.database != "" {
		params.Set("database", c.database)
	}
	if q.ID != "" {
		params.Set("query_id", q.ID)
	}
	method := "LZ4"
	for _, s := range q.Settings {
		params.Set(s.Key, s.Value)
		if s.Key == "network_compression_method" {
			method = s.Value
		}
	}
	for _, p := range q.Parameters {
		v, err := unquoteField(p.Value)
		if err != nil {
			return c.exception(badRequest(456, "parameter %s: %v", p.Key, err))
		}
		params.Set("param_"+p.Key, v)
	}
	params.Set("default_format", "Native")
	w := &dataWriter{c: c, compressed: compressed, method: method}

	if m := insertDataRe.FindStringSubmatch(q.Body); m != nil {
		return c.insert(params, w, m[1], m[2], compressed)
	}
	sql := strings.TrimSpace(q.Body)
	if m := formatClauseRe.FindStringIndex(sql); m != nil && !insertFormatRe.MatchString(sql) {
		// Over this protocol results are blocks, whatever the query's FORMAT.
		sql = sql[:m[0]]
	}
	params.Set("query", sql)

	start := time.Now()
	out, cerr, cancelled, err := c.watch(func() (*output, *chError) { return c.srv.execute(params, nil) })
	if err != nil || cancelled {
		return err
	}
	if cerr != nil {
		return c.exception(cerr)
	}
	blocks, rows, err := c.sendResult(w, out.data)
	var ce *chError
	if errors.As(err, &ce) {
		return c.exception(ce)
	}
	if err != nil {
		return err
	}
	return c.finish(chproto.Profile{Rows: uint64(rows), Blocks: uint64(blocks), Bytes: uint64(len(out.data))},
		chproto.Progress{Rows: readRows(out.res, rows), Bytes: uint64(len(out.data)), TotalRows: readRows(out.res, rows),
			ElapsedNs: uint64(time.Since(start))})
}

func readRows(res Result, rows int) uint64 {
	if res.ScannedRows != nil {
		return *res.ScannedRows
	}
	return uint64(rows)
}

// finish ends a query as the server does: profile info, progress, end of stream.
func (c *tcpConn) finish(profile chproto.Profile, progress chproto.Progress) error {
	profile.EncodeAware(c.buf, c.ver) // writes its own packet code
	chproto.ServerCodeProgress.Encode(c.buf)
	progress.EncodeAware(c.buf, c.ver)
	chproto.ServerCodeEndOfStream.Encode(c.buf)
	return c.flush()
}

// afterRead turns a read error during a query into the connection's end, or
// into end of stream for a cancel.
func (c *tcpConn) afterRead(err error) error {
	if errors.Is(err, errCancelled) {
		chproto.ServerCodeEndOfStream.Encode(c.buf)
		return c.flush()
	}
	var ce *chError
	if errors.As(err, &ce) {
		return c.fatal(ce)
	}
	return err
}

// readData reads one Data packet (the code must be next): table name, then
// the block, decompressed when the query asked for compression.
func (c *tcpConn) readData(compressed bool) (*goproto.Block, string, error) {
	code, err := c.packet()
	if err != nil {
		return nil, "", err
	}
	for code == clientCodeScalar {
		// A ClickHouse server querying this endpoint as a shard sends the
		// scalar subqueries it already computed; the engine computes its own
		// from the query text, so they are read and dropped.
		if _, err := c.decodeBlock(compressed); err != nil {
			return nil, "", err
		}
		if code, err = c.packet(); err != nil {
			return nil, "", err
		}
	}
	switch code {
	case chproto.ClientCodeData:
	case chproto.ClientCodeCancel:
		return nil, "", errCancelled
	default:
		return nil, "", badRequest(101, "expected a data packet, got %s", code)
	}
	return c.decodeBlockNamed(compressed)
}

// clientCodeScalar is the client's Scalar packet (Protocol::Client::Scalar),
// which ch-go does not list: a table name and a block, like Data.
const clientCodeScalar chproto.ClientCode = 7

func (c *tcpConn) decodeBlock(compressed bool) (*goproto.Block, error) {
	blk, _, err := c.decodeBlockNamed(compressed)
	return blk, err
}

// decodeBlockNamed reads the rest of a Data (or Scalar) packet: its table
// name and block.
func (c *tcpConn) decodeBlockNamed(compressed bool) (*goproto.Block, string, error) {
	var cd chproto.ClientData
	if err := cd.DecodeAware(c.r, c.ver); err != nil {
		return nil, "", fmt.Errorf("decode data packet: %w", err)
	}
	if compressed {
		c.r.EnableCompression()
		defer c.r.DisableCompression()
	}
	blk := &goproto.Block{ServerContext: c.columnContext()}
	if err := blk.Decode(c.r, uint64(c.ver)); err != nil {
		return nil, "", badRequest(33, "cannot read data block: %v", err)
	}
	return blk, cd.TableName, nil
}

func (c *tcpConn) columnContext() *column.ServerContext {
	if c.colCtx == nil {
		loc, err := time.LoadLocation(c.srv.engine.Info().Timezone)
		if err != nil {
			loc = time.UTC
		}
		c.colCtx = &column.ServerContext{Revision: uint64(c.ver), Timezone: loc}
	}
	return c.colCtx
}

// watch runs fn (an engine call) while watching the connection for the
// client's cancel. After a cancel the answer is dropped and end of stream
// sent (cancelled is true; the connection stays usable). A packet other than
// cancel that arrives meanwhile (a client pipelining its next request) is
// kept for the next read.
func (c *tcpConn) watch(fn func() (*output, *chError)) (out *output, cerr *chError, cancelled bool, err error) {
	type got struct {
		code chproto.ClientCode
		err  error
	}
	seen := make(chan got, 1)
	go func() {
		n, err := c.r.UVarInt()
		seen <- got{chproto.ClientCode(n), err}
	}()
	out, cerr = fn()
	_ = c.conn.SetReadDeadline(time.Now())
	g := <-seen
	_ = c.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	switch {
	case g.err == nil && g.code == chproto.ClientCodeCancel:
		chproto.ServerCodeEndOfStream.Encode(c.buf)
		return nil, nil, true, c.flush()
	case g.err == nil:
		c.pending = &g.code
	case errors.As(g.err, &ne) && ne.Timeout():
	default:
		return nil, nil, false, g.err // the client went away
	}
	return out, cerr, false, nil
}

// dataWriter sends Data packets: table name, then the block, compressed in
// ClickHouse's block frames when the query asked for compression.
type dataWriter struct {
	c          *tcpConn
	compressed bool
	method     string
	block      chproto.Buffer
}

func (w *dataWriter) send(encode func(b *chproto.Buffer) error) error {
	w.block.Reset()
	if err := encode(&w.block); err != nil {
		return err
	}
	c := w.c
	chproto.ServerCodeData.Encode(c.buf)
	c.buf.PutString("")
	if w.compressed {
		data, err := compressBlocks(w.block.Buf, w.method)
		if err != nil {
			return fmt.Errorf("compress block: %w", err)
		}
		c.buf.Buf = append(c.buf.Buf, data...)
	} else {
		c.buf.Buf = append(c.buf.Buf, w.block.Buf...)
	}
	return c.flush()
}

// header sends a block's columns with no rows: what clients read the
// result's (or an INSERT's) columns from.
func (w *dataWriter) header(blk *goproto.Block) error {
	input := make([]chproto.InputColumn, len(blk.Columns))
	for i, col := range blk.Columns {
		input[i] = chproto.InputColumn{Name: col.Name(), Data: noRows(col.Type())}
	}
	return w.send(func(b *chproto.Buffer) error {
		return chproto.Block{Info: chproto.BlockInfo{BucketNum: -1}, Columns: len(input)}.EncodeBlock(b, w.c.ver, input)
	})
}

// sendResult sends the engine's Native output (blocks at revision 0) as Data
// packets at the connection's revision: first the header (the first block's
// columns, no rows), then every block with rows.
func (c *tcpConn) sendResult(w *dataWriter, native []byte) (blocks, rows int, err error) {
	r := chproto.NewReader(bytes.NewReader(native))
	for first := true; ; first = false {
		blk := &goproto.Block{ServerContext: c.columnContext()}
		if err := blk.Decode(r, 0); err != nil {
			if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return blocks, rows, nil // after the last block
			}
			// The stream is still whole (packets are sent whole): say so
			// as an exception rather than drop the connection.
			return blocks, rows, &chError{code: 50, msg: fmt.Sprintf(
				"the local endpoint cannot pass this result over the native protocol (use HTTP for it): %v. (UNKNOWN_TYPE)", err)}
		}
		if first {
			if err := w.header(blk); err != nil {
				return 0, 0, err
			}
		}
		if blk.Rows() == 0 {
			continue
		}
		if err := w.send(func(b *chproto.Buffer) error { return blk.Encode(b, uint64(c.ver)) }); err != nil {
			return blocks, rows, err
		}
		blocks++
		rows += blk.Rows()
	}
}

// insertDataRe matches an INSERT whose data the client sends as blocks:
// `INSERT INTO t [(cols)] [SETTINGS ...] VALUES` or `... FORMAT <fmt>` with
// nothing after. Group 1 is the statement before VALUES/FORMAT, group 2 the
// target table.
var insertDataRe = regexp.MustCompile(`(?is)^\s*(INSERT\s+INTO\s+(?:TABLE\s+)?([^\s(]+)(?:\s*\([^)]*\))?(?:\s+SETTINGS\s+.*?)?)\s*(?:VALUES|FORMAT\s+[A-Za-z0-9_]+)\s*;?\s*$`)

// insertColumnsRe finds the column list of an INSERT.
var insertColumnsRe = regexp.MustCompile(`(?is)^\s*INSERT\s+INTO\s+(?:TABLE\s+)?[^\s(]+\s*\(([^)]*)\)`)

// insert answers an INSERT that takes client data: the table's header block
// first, then the client's data blocks until an empty one, written to the
// engine as one Native insert.
func (c *tcpConn) insert(params paramSet, w *dataWriter, stmt, table string, compressed bool) error {
	cols := "*"
	if m := insertColumnsRe.FindStringSubmatch(stmt); m != nil {
		cols = m[1]
	}
	hdr, cerr := c.srv.insertHeader(params, table, cols)
	if cerr != nil {
		return c.exception(cerr)
	}
	header := &goproto.Block{ServerContext: c.columnContext()}
	if err := header.Decode(chproto.NewReader(bytes.NewReader(hdr)), 0); err != nil {
		return fmt.Errorf("decode the table's header: %w", err)
	}
	if err := w.header(header); err != nil {
		return err
	}
	var body chproto.Buffer
	rows := 0
	for {
		blk, _, err := c.readData(compressed)
		if err != nil {
			return c.afterRead(err)
		}
		if len(blk.Columns) == 0 && blk.Rows() == 0 {
			break
		}
		if blk.Rows() == 0 {
			continue
		}
		// Native format is the block at revision 0: no block info, no
		// serialization flags.
		if err := blk.Encode(&body, 0); err != nil {
			return c.fatal(badRequest(33, "cannot re-encode data block: %v", err))
		}
		rows += blk.Rows()
		if len(body.Buf) > maxBody {
			return c.fatal(badRequest(241, "insert larger than %d bytes", maxBody))
		}
	}
	start := time.Now()
	params.Set("query", stmt+" FORMAT Native")
	_, cerr, cancelled, err := c.watch(func() (*output, *chError) {
		if rows == 0 {
			return &output{}, nil
		}
		return c.srv.execute(params, body.Buf)
	})
	if err != nil || cancelled {
		return err
	}
	if cerr != nil {
		return c.exception(cerr)
	}
	// No profile info after an INSERT, as from a server: a ClickHouse
	// server inserting into this endpoint as a shard (a Distributed table)
	// accepts only progress, profile events and end of stream here.
	chproto.ServerCodeProgress.Encode(c.buf)
	progress := chproto.Progress{WroteRows: uint64(rows), WroteBytes: uint64(len(body.Buf)), ElapsedNs: uint64(time.Since(start))}
	progress.EncodeAware(c.buf, c.ver)
	chproto.ServerCodeEndOfStream.Encode(c.buf)
	return c.flush()
}

// unquoteField reads a parameter value as clickhouse-go and ch-go send it:
// a quoted field dump ('...' with backslash escapes). The result is the
// text the HTTP interface receives as param_<name>.
func unquoteField(s string) (string, error) {
	if len(s) < 2 || s[0] != '\'' || s[len(s)-1] != '\'' {
		return s, nil // not quoted: taken as is
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch != '\\' {
			b.WriteByte(ch)
			continue
		}
		i++
		if i == len(s) {
			return "", errors.New("dangling backslash")
		}
		switch e := s[i]; e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'a':
			b.WriteByte('\a')
		case 'v':
			b.WriteByte('\v')
		case 'x':
			if i+2 >= len(s) {
				return "", errors.New("short \\x escape")
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("bad \\x escape: %w", err)
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			b.WriteByte(e)
		}
	}
	return b.String(), nil
}
