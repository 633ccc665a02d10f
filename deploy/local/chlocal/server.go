package chlocal

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/ch-go/compress"
	chproto "github.com/ClickHouse/ch-go/proto"
)

// insertFile is where a request's INSERT data is put in the wasm engine's
// in-memory file system (it answers one request at a time, so one path is
// enough); the native engine substitutes a file of its own per request.
const insertFile = "/tmp/statustrace-insert.data"

// instancePath answers the endpoint's instance token (see Config.Token).
const instancePath = "/statustrace/instance"

// maxBody bounds a request body (a batch insert), so a runaway client cannot
// exhaust the memory the engine needs.
const maxBody = 1 << 30

// httpOnlyParams are URL parameters of ClickHouse's HTTP interface that are
// not settings and so must not be applied with SET.
var httpOnlyParams = map[string]bool{
	"query": true, "database": true, "default_format": true, "compress": true, "decompress": true,
	"session_id": true, "session_timeout": true, "session_check": true, "query_id": true,
	"client_protocol_version": true, "user": true, "password": true, "wait_end_of_query": true,
	"quota_key": true, "buffer_size": true, "role": true, "default_database": true,
	"enable_http_compression": true, "http_headers_progress_interval_ms": true,
	"send_progress_in_http_headers": true, "cancel_http_readonly_queries_on_client_close": true,
}

// Server is the HTTP interface. Create it with NewServer.
type Server struct {
	engine *Engine
	log    *slog.Logger

	token string // answered on instancePath

	mu       sync.Mutex
	sessions map[string]time.Time // session id -> expiry

	// helloAnswered counts answers to clickhouse-go's connect-time query; a
	// test watches it so a client upgrade that changes the handshake fails loudly.
	helloAnswered atomic.Int64

	// schemaGen counts statements that may change a table's columns (any
	// that is neither a SELECT nor an INSERT); the native protocol's cache
	// of INSERT header blocks is valid for one generation.
	schemaGen atomic.Uint64
	headersMu sync.Mutex
	headers   map[string]cachedHeader
}

// NewServer wraps a running engine.
func NewServer(engine *Engine, log *slog.Logger) *Server {
	return &Server{engine: engine, log: log, sessions: map[string]time.Time{}}
}

// HelloAnswered reports how many connect-time handshake queries were answered.
func (s *Server) HelloAnswered() int64 { return s.helloAnswered.Load() }

// chError is an error with a ClickHouse error code, answered as ClickHouse does.
type chError struct {
	code   int
	status int
	msg    string
}

func (e *chError) Error() string { return e.msg }

func badRequest(code int, format string, args ...any) *chError {
	return &chError{code: code, status: http.StatusBadRequest,
		msg: fmt.Sprintf("Code: %d. DB::Exception: %s. (%s)", code, fmt.Sprintf(format, args...), codeName(code))}
}

var codeRe = regexp.MustCompile(`Code:\s*(\d+)\.`)

// engineError turns an engine error text into a chError with the real code.
func engineError(text string) *chError {
	text = strings.TrimSpace(text)
	code := 1002 // UNKNOWN_EXCEPTION
	if m := codeRe.FindStringSubmatch(text); m != nil {
		code, _ = strconv.Atoi(m[1])
	} else {
		text = fmt.Sprintf("Code: %d. DB::Exception: %s", code, text)
	}
	return &chError{code: code, status: statusFor(code), msg: text}
}

// statusFor maps error codes to HTTP status like the server's HTTPHandler.
func statusFor(code int) int {
	switch code {
	case 516, 192, 193, 194, 195: // authentication
		return http.StatusUnauthorized
	case 164, 497, 291: // readonly, access denied
		return http.StatusForbidden
	case 60, 81: // unknown table, unknown database
		return http.StatusNotFound
	case 16, 47, 36, 46, 62, 27, 26, 6, 41, 38, 69, 70, 72, 53, 43, 44, 33, 117, 115:
		return http.StatusBadRequest
	case 159, 209, 210:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func codeName(code int) string {
	switch code {
	case 62:
		return "SYNTAX_ERROR"
	case 115:
		return "UNKNOWN_SETTING"
	case 372:
		return "SESSION_NOT_FOUND"
	case 1:
		return "UNSUPPORTED_METHOD"
	case 27:
		return "CANNOT_PARSE_INPUT_ASSERTION_FAILED"
	}
	return "BAD_ARGUMENTS"
}

// ServeHTTP implements ClickHouse's HTTP interface.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Not ClickHouse's: which embedded engine answers (tests that depend on
	// an engine's limits read it).
	w.Header().Set("X-Statustrace-Engine", s.engine.Info().Engine)
	switch r.URL.Path {
	case "/ping":
		_, _ = io.WriteString(w, "Ok.\n")
		return
	case instancePath:
		// Not ClickHouse's: tells start.sh whether its own state folder
		// started this endpoint (the token is an identity, not a secret).
		_, _ = io.WriteString(w, s.token)
		return
	case "/", "":
	default:
		s.writeError(w, paramSet{r.URL.Query()}, &chError{code: 1, status: http.StatusNotFound,
			msg: fmt.Sprintf("Code: 1. DB::Exception: no handler for path %q. (UNSUPPORTED_METHOD)", r.URL.Path)})
		return
	}
	params, err := parseParams(r)
	if err != nil {
		s.writeError(w, paramSet{r.URL.Query()}, badRequest(27, "cannot parse parameters: %v", err))
		return
	}
	if r.Method == http.MethodGet && params.Get("query") == "" {
		_, _ = io.WriteString(w, "Ok.\n")
		return
	}
	body, cerr := readBody(r, params)
	if cerr != nil {
		s.writeError(w, params, cerr)
		return
	}
	out, cerr := s.execute(params, body)
	if cerr != nil {
		s.writeError(w, params, cerr)
		return
	}
	s.writeResult(w, params, out)
}

// parseParams merges URL parameters and, for form posts, form fields.
func parseParams(r *http.Request) (paramSet, error) {
	p := paramSet{r.URL.Query()}
	if r.Header.Get("X-ClickHouse-Database") != "" && p.Get("database") == "" {
		p.Set("database", r.Header.Get("X-ClickHouse-Database"))
	}
	if f := r.Header.Get("X-ClickHouse-Format"); f != "" && p.Get("default_format") == "" {
		p.Set("default_format", f)
	}
	return p, nil
}

// readBody returns the request body, undoing ClickHouse block compression
// (decompress=1) and HTTP content encoding.
func readBody(r *http.Request, params paramSet) ([]byte, *chError) {
	var rd io.Reader = http.MaxBytesReader(nil, r.Body, maxBody)
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(rd)
		if err != nil {
			return nil, badRequest(354, "cannot decode gzip body: %v", err)
		}
		rd = gz
	default:
		return nil, badRequest(1, "unsupported Content-Encoding %q (the local endpoint supports gzip and ClickHouse block compression)", enc)
	}
	if params.Get("decompress") == "1" {
		rd = compress.NewReader(rd)
	}
	b, err := io.ReadAll(rd)
	// The block reader reports the end of the last block as a wrapped EOF.
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, badRequest(271, "cannot read request body: %v", err)
	}
	return b, nil
}

// output is a finished query's answer.
type output struct {
	data   []byte
	format string
	res    Result
	qid    string
}

var (
	insertFormatRe = regexp.MustCompile(`(?is)^\s*(INSERT\s+INTO\s+(?:TABLE\s+)?(?:FUNCTION\s+\S+\(.*?\)|[^\s(]+)(?:\s*\([^)]*\))?)\s*(SETTINGS\s+.*?)?\s*FORMAT\s+([A-Za-z0-9_]+)[ \t]*(?:\r?\n|$)`)
	formatClauseRe = regexp.MustCompile(`(?is)\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$`)
	helloQuery     = "SELECT displayName(), version(), revision(), timezone()"
)

// splitQuery finds the SQL and any INSERT data in a request, following
// ClickHouse: the query comes from the `query` parameter followed by the
// body, or from the body alone; after `INSERT ... FORMAT x` comes data.
func splitQuery(params paramSet, body []byte) (sql string, data []byte, insertFormat string) {
	q := params.Get("query")
	full := q
	if q == "" {
		full = string(body)
	} else if len(body) > 0 {
		if m := insertFormatRe.FindStringSubmatchIndex(q); m != nil && strings.TrimSpace(q[m[1]:]) == "" {
			return q[:m[7]], body, q[m[6]:m[7]]
		}
		full = q + "\n" + string(body)
	}
	if m := insertFormatRe.FindStringSubmatchIndex(full); m != nil {
		return full[:m[7]], []byte(full[m[1]:]), full[m[6]:m[7]]
	}
	return full, nil, ""
}

// toInfile rewrites `INSERT INTO t (c) [SETTINGS ...] FORMAT f` to read from
// the engine's file system: `INSERT INTO t (c) FROM INFILE '...' [SETTINGS ...] FORMAT f`.
func toInfile(sql string) string {
	m := insertFormatRe.FindStringSubmatch(sql)
	if m == nil {
		return sql
	}
	out := m[1] + " FROM INFILE '" + insertFile + "'"
	if m[2] != "" {
		out += " " + strings.TrimSpace(m[2])
	}
	return out + " FORMAT " + m[3]
}

func (s *Server) execute(params paramSet, body []byte) (*output, *chError) {
	sql, data, insertFormat := splitQuery(params, body)
	if strings.TrimSpace(sql) == "" {
		return nil, badRequest(62, "empty query")
	}
	format := params.Get("default_format")
	if format == "" {
		format = "TabSeparated"
	}
	if m := formatClauseRe.FindStringSubmatch(sql); m != nil {
		format = m[1]
	}
	qid := params.Get("query_id")
	if qid == "" {
		qid = newQueryID()
	}

	if strings.TrimSpace(sql) == helloQuery && format == "Native" {
		out, err := s.hello(params)
		if err != nil {
			return nil, &chError{code: 1002, status: 500, msg: "Code: 1002. DB::Exception: " + err.Error()}
		}
		s.helloAnswered.Add(1)
		return &output{data: out, format: format, qid: qid}, nil
	}

	session, cerr := s.session(params)
	if cerr != nil {
		return nil, cerr
	}
	if session == "" {
		if cerr := checkParams(sql, params); cerr != nil {
			return nil, cerr
		}
	}

	var pre, post []Statement
	if db := params.Get("database"); db != "" {
		pre = append(pre, Statement{SQL: "USE " + quoteIdent(db)})
	} else if session == "" {
		// The shared connection must not keep another request's database.
		pre = append(pre, Statement{SQL: "USE default"})
	}
	for _, k := range params.keys() {
		v := params.Get(k)
		switch {
		case strings.HasPrefix(k, "param_"):
			pre = append(pre, Statement{SQL: "SET " + quoteIdent(k) + " = " + quoteString(v)})
		case httpOnlyParams[k] || strings.HasSuffix(k, "_structure") || strings.HasSuffix(k, "_format") && k != "output_format" && !isKnownFormatSetting(k):
			// HTTP-only parameters, external-table descriptions.
		default:
			pre = append(pre, Statement{SQL: "SET " + quoteIdent(k) + " = " + settingLiteral(v)})
			// URL settings apply to this request only: put the connection back.
			post = append(post, Statement{SQL: "SET " + quoteIdent(k) + " = DEFAULT"})
		}
	}

	file := ""
	stmt := stripDropSync(sql)
	if insertFormat != "" {
		file = insertFile
		stmt = toInfile(sql)
	}
	stmts := append(pre, Statement{SQL: stmt, Format: format})
	start := time.Now()
	if insertFormat == "" && !isSelect(stmt) && !insertRe.MatchString(stmt) {
		// Bumped after the statement too (below): a header read while it ran
		// belongs to neither generation.
		s.schemaGen.Add(1)
		defer s.schemaGen.Add(1)
	}
	var res Result
	var err error
	if session == "" && insertFormat != "" && settingOn(params.Get("async_insert")) {
		res, err = s.engine.ExecAsyncInsert(stmts, post, file, data)
	} else {
		res, err = s.engine.Exec(session, stmts, post, file, data)
	}
	s.log.Debug("query", "sql", truncate(stmt, 300), "session", session, "pre", len(pre), "reset", len(post), "bytes_in", len(data), "took", time.Since(start), "err", err)
	if err == nil && res.OK && len(res.Data) == 0 && strings.EqualFold(format, "Native") && isSelect(stmt) {
		// The engine writes nothing for no rows; a server writes the header
		// block, and clients read the result's columns from it.
		if res.Data, err = s.header(session, pre, post, stmt); err != nil {
			res = Result{Error: err.Error()}
			err = nil
		}
	}
	if err != nil {
		return nil, &chError{code: 210, status: http.StatusServiceUnavailable,
			msg: "Code: 210. DB::Exception: local ClickHouse engine is not available: " + err.Error() + ". (NETWORK_ERROR)"}
	}
	if !res.OK {
		return nil, engineError(res.Error)
	}
	return &output{data: res.Data, format: format, res: res, qid: qid}, nil
}

// header returns the Native header block (names and types, no rows) of a
// SELECT, from DESCRIBE on the same connection state (pre: database,
// settings, parameters).
func (s *Server) header(session string, pre, reset []Statement, sql string) ([]byte, error) {
	sql = strings.TrimRight(strings.TrimSpace(sql), ";")
	if m := formatClauseRe.FindStringIndex(sql); m != nil {
		sql = sql[:m[0]] // DESCRIBE takes the query without its FORMAT
	}
	// Line breaks: the query may end in a comment.
	describe := "DESCRIBE (\n" + sql + "\n)"
	res, err := s.engine.Exec(session, append(pre[:len(pre):len(pre)], Statement{SQL: describe, Format: "JSONCompact"}), reset, "", nil)
	if err != nil {
		return nil, err
	}
	if !res.OK {
		return nil, errors.New(res.Error)
	}
	var doc struct {
		Data [][]any `json:"data"`
	}
	if err := json.Unmarshal(res.Data, &doc); err != nil {
		return nil, fmt.Errorf("Code: 1002. DB::Exception: cannot read the result's columns: %w", err)
	}
	input := make([]chproto.InputColumn, 0, len(doc.Data))
	for _, row := range doc.Data {
		if len(row) < 2 {
			continue
		}
		name, _ := row[0].(string)
		typ, _ := row[1].(string)
		input = append(input, chproto.InputColumn{Name: name, Data: noRows(typ)})
	}
	var buf chproto.Buffer
	if err := (chproto.Block{Columns: len(input)}).EncodeBlock(&buf, 0, input); err != nil {
		return nil, err
	}
	return buf.Buf, nil
}

// noRows is a column of a type and no rows: what a header block carries.
type noRows chproto.ColumnType

func (t noRows) Type() chproto.ColumnType   { return chproto.ColumnType(t) }
func (noRows) Rows() int                    { return 0 }
func (noRows) EncodeColumn(*chproto.Buffer) {}
func (noRows) WriteColumn(*chproto.Writer)  {}

// insertRe tells an INSERT (whatever the leading comments).
var insertRe = regexp.MustCompile(`(?is)^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*INSERT\b`)

// cachedHeader is a Native header block valid while schemaGen is gen.
type cachedHeader struct {
	gen   uint64
	block []byte
}

// insertHeader returns the Native header block (names, types, no rows) an
// INSERT into table (columns cols, "*" for all) takes, from the cache while
// no statement that may change a schema ran since it was read: a native
// protocol INSERT needs it before its data, and reading it costs an engine
// call per batch otherwise.
func (s *Server) insertHeader(params paramSet, table, cols string) ([]byte, *chError) {
	key := params.Get("database") + "\x00" + table + "\x00" + cols
	gen := s.schemaGen.Load()
	s.headersMu.Lock()
	h, ok := s.headers[key]
	s.headersMu.Unlock()
	if ok && h.gen == gen {
		return h.block, nil
	}
	hp := paramSet{Values: map[string][]string{}}
	for k, v := range params.Values {
		if !strings.HasPrefix(k, "param_") {
			hp.Values[k] = v
		}
	}
	hp.Set("query", "SELECT "+cols+" FROM "+table+" LIMIT 0")
	hp.Set("default_format", "Native")
	out, cerr := s.execute(hp, nil)
	if cerr != nil {
		return nil, cerr
	}
	s.headersMu.Lock()
	if s.headers == nil || len(s.headers) > 1000 {
		s.headers = map[string]cachedHeader{}
	}
	s.headers[key] = cachedHeader{gen: gen, block: out.data}
	s.headersMu.Unlock()
	return out.data, nil
}

// leadingRe skips what may precede a statement's first keyword: blanks,
// comments and opening parentheses.
var leadingRe = regexp.MustCompile(`^(?:\s+|--[^\n]*(?:\n|$)|#[^\n]*(?:\n|$)|/\*(?s:.*?)\*/|\()*`)

// isSelect tells a SELECT (or WITH ... SELECT): statements whose empty
// answer still names its columns.
func isSelect(sql string) bool {
	rest := strings.ToUpper(sql[len(leadingRe.FindString(sql)):])
	return strings.HasPrefix(rest, "SELECT") || strings.HasPrefix(rest, "WITH")
}

var (
	paramRefRe = regexp.MustCompile(`\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:`)
	createRe   = regexp.MustCompile(`(?is)^\s*(CREATE|ATTACH|ALTER)\b`)
)

// checkParams refuses a query that uses a {name:Type} parameter the request
// does not set, as the server does. Without it the shared connection would
// answer with the value an earlier request set: the engine cannot unset
// parameters. DDL is exempt: a parameterized view is created without values.
func checkParams(sql string, params paramSet) *chError {
	if createRe.MatchString(sql) {
		return nil
	}
	for _, m := range paramRefRe.FindAllStringSubmatch(outsideLiterals(sql), -1) {
		if _, ok := params.Values["param_"+m[1]]; !ok {
			return &chError{code: 456, status: http.StatusBadRequest,
				msg: fmt.Sprintf("Code: 456. DB::Exception: Substitution `%s` is not set. (UNKNOWN_QUERY_PARAMETER)", m[1])}
		}
	}
	return nil
}

// outsideLiterals blanks string literals, quoted identifiers and comments,
// where {name:Type} is text, not a parameter (a ClickHouse server querying
// this endpoint as a shard sends parameter values as literals, and a value
// may hold such text).
func outsideLiterals(sql string) string {
	b := []byte(sql)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for ; j < len(b); j++ {
				if b[j] == '\\' {
					b[j] = ' '
					j++
					if j < len(b) {
						b[j] = ' '
					}
					continue
				}
				if b[j] == c {
					if j+1 < len(b) && b[j+1] == c { // doubled quote
						b[j], b[j+1] = ' ', ' '
						j++
						continue
					}
					break
				}
				b[j] = ' '
			}
			i = j
		case c == '-' && i+1 < len(b) && b[i+1] == '-', c == '#' && i+1 < len(b) && (b[i+1] == ' ' || b[i+1] == '!'):
			for ; i < len(b) && b[i] != '\n'; i++ {
				b[i] = ' '
			}
		case c == '/' && i+1 < len(b) && b[i+1] == '*':
			for ; i < len(b) && !(b[i] == '*' && i+1 < len(b) && b[i+1] == '/'); i++ {
				b[i] = ' '
			}
		}
	}
	return string(b)
}

var dropSyncRe = regexp.MustCompile(`(?is)^(\s*(?:DROP|DETACH)\s.*?)\s+SYNC\s*;?\s*$`)

// stripDropSync removes SYNC from DROP/DETACH: chDB-wasm deadlocks waiting
// for the synchronous drop. The drop still happens, just in the background.
func stripDropSync(sql string) string {
	if m := dropSyncRe.FindStringSubmatch(sql); m != nil {
		return m[1]
	}
	return sql
}

// isKnownFormatSetting tells settings that end in _format (real settings)
// from `<table>_format` external-table parameters.
func isKnownFormatSetting(k string) bool {
	return strings.HasPrefix(k, "output_format_") || strings.HasPrefix(k, "input_format_") ||
		strings.HasPrefix(k, "format_") || strings.HasPrefix(k, "date_time_")
}

// session resolves session_id and its timeout; it returns "" for requests
// without a session.
func (s *Server) session(params paramSet) (string, *chError) {
	id := params.Get("session_id")
	if id == "" {
		return "", nil
	}
	timeout := 60 * time.Second
	if t := params.Get("session_timeout"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || n > 3600 {
			return "", badRequest(36, "invalid session_timeout %q", t)
		}
		timeout = time.Duration(n) * time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[id]; !ok && params.Get("session_check") == "1" {
		return "", &chError{code: 372, status: http.StatusNotFound,
			msg: fmt.Sprintf("Code: 372. DB::Exception: Session %s not found. (SESSION_NOT_FOUND)", id)}
	}
	s.sessions[id] = time.Now().Add(timeout)
	return id, nil
}

// ExpireSessions closes sessions idle past their timeout; run it periodically.
func (s *Server) ExpireSessions(now time.Time) {
	s.mu.Lock()
	var expired []string
	for id, exp := range s.sessions {
		if now.After(exp) {
			expired = append(expired, id)
			delete(s.sessions, id)
		}
	}
	s.mu.Unlock()
	for _, id := range expired {
		if err := s.engine.CloseSession(id); err != nil {
			s.log.Warn("close session", "session", id, "err", err)
		}
	}
}

func (s *Server) writeResult(w http.ResponseWriter, params paramSet, out *output) {
	data := out.data
	if params.Get("compress") == "1" && len(data) > 0 {
		var err error
		if data, err = compressBlocks(data, params.Get("network_compression_method")); err != nil {
			s.writeError(w, params, &chError{code: 1002, status: 500, msg: "Code: 1002. DB::Exception: compress reply: " + err.Error()})
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", contentType(out.format))
	h.Set("X-ClickHouse-Query-Id", out.qid)
	h.Set("X-ClickHouse-Format", out.format)
	h.Set("X-ClickHouse-Timezone", s.engine.Info().Timezone)
	h.Set("X-ClickHouse-Server-Display-Name", s.engine.Info().DisplayName)
	sum := map[string]string{
		"written_rows":  "0",
		"written_bytes": "0",
		"result_rows":   strconv.FormatUint(out.res.Rows, 10),
		"result_bytes":  strconv.FormatUint(out.res.Bytes, 10),
		"elapsed_ns":    strconv.FormatInt(int64(out.res.Elapsed*1e9), 10),
	}
	// Read counts only when the engine knows them: a made-up 0 would pass
	// for a measurement.
	if out.res.ScannedRows != nil && out.res.ScannedBytes != nil {
		sum["read_rows"] = strconv.FormatUint(*out.res.ScannedRows, 10)
		sum["read_bytes"] = strconv.FormatUint(*out.res.ScannedBytes, 10)
		sum["total_rows_to_read"] = sum["read_rows"]
	}
	summary, _ := json.Marshal(sum)
	h.Set("X-ClickHouse-Summary", string(summary))
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

func (s *Server) writeError(w http.ResponseWriter, params paramSet, e *chError) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("X-ClickHouse-Exception-Code", strconv.Itoa(e.code))
	if params.Get("query_id") != "" {
		h.Set("X-ClickHouse-Query-Id", params.Get("query_id"))
	}
	w.WriteHeader(e.status)
	_, _ = io.WriteString(w, e.msg+"\n")
}

// compressBlocks frames data in ClickHouse's compressed blocks (CityHash128
// checksum, method, sizes, payload), as the server does for compress=1.
func compressBlocks(data []byte, method string) ([]byte, error) {
	m := compress.LZ4
	switch strings.ToUpper(method) {
	case "ZSTD":
		m = compress.ZSTD
	case "NONE":
		m = compress.None
	}
	wr := compress.NewWriter(compress.LevelZero, m)
	const blockSize = 1 << 20 // the server's max_compress_block_size
	var out bytes.Buffer
	for len(data) > 0 {
		n := min(blockSize, len(data))
		if err := wr.Compress(data[:n]); err != nil {
			return nil, err
		}
		out.Write(wr.Data)
		data = data[n:]
	}
	return out.Bytes(), nil
}

func contentType(format string) string {
	switch strings.ToLower(format) {
	case "json", "jsoncompact", "jsoneachrow", "jsoncompacteachrow", "jsonstrings":
		return "application/json; charset=UTF-8"
	case "native", "rowbinary", "rowbinarywithnamesandtypes", "parquet", "arrow", "arrowstream":
		return "application/octet-stream"
	case "csv", "csvwithnames":
		return "text/csv; charset=UTF-8"
	}
	return "text/tab-separated-values; charset=UTF-8"
}

// hello builds the reply to clickhouse-go's connect-time query in the layout
// the client decodes it with (protocol revision client_protocol_version: block
// info and a custom-serialization flag per column), reporting revision 0 so
// that the client decodes every later reply as plain Native, which is what
// the engine writes.
func (s *Server) hello(params paramSet) ([]byte, error) {
	rev := uint64(0)
	if v := params.Get("client_protocol_version"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad client_protocol_version %q", v)
		}
		rev = n
	}
	info := s.engine.Info()
	var (
		name, version, tz chproto.ColStr
		revision          chproto.ColUInt32
	)
	name.Append(info.DisplayName)
	version.Append(info.Version)
	revision.Append(0)
	tz.Append(info.Timezone)
	input := chproto.Input{
		{Name: "displayName()", Data: &name},
		{Name: "version()", Data: &version},
		{Name: "revision()", Data: &revision},
		{Name: "timezone()", Data: &tz},
	}
	var buf chproto.Buffer
	block := chproto.Block{Info: chproto.BlockInfo{BucketNum: -1}, Columns: 4, Rows: 1}
	if err := block.EncodeBlock(&buf, int(rev), input); err != nil {
		return nil, err
	}
	return buf.Buf, nil
}

func newQueryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// settingOn reports whether a boolean setting's value turns it on, as
// ClickHouse reads it (1, true; case-insensitive).
func settingOn(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	return v == "1" || v == "true"
}

// quoteIdent quotes an identifier with backticks for USE and SET.
func quoteIdent(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`").Replace(s) + "`"
}

// quoteString quotes a string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer("\\", "\\\\", "'", "\\'").Replace(s) + "'"
}

var numberRe = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// settingLiteral writes a setting value: numbers as numbers, the rest as strings.
func settingLiteral(v string) string {
	if numberRe.MatchString(v) {
		return v
	}
	return quoteString(v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
