package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/statustrace/statustrace/queries"
	schedapi "github.com/statustrace/statustrace/scheduler/api"
)

// Functions calls GET /v1/functions.
func (c *Client) Functions(ctx context.Context, q queries.StatsQuery, durations bool) (*Functions, error) {
	var f Functions
	return &f, c.getJSON(ctx, "/v1/functions", StatsValues(q, durations), &f)
}

// Trace calls GET /v1/events/{request_id}/trace.
func (c *Client) Trace(ctx context.Context, requestID string) (*EventTrace, error) {
	var t EventTrace
	return &t, c.getJSON(ctx, "/v1/events/"+url.PathEscape(requestID)+"/trace", nil, &t)
}

// Terminate calls POST /v1/events/{request_id}/terminate.
func (c *Client) Terminate(ctx context.Context, requestID string, mode schedapi.TerminateMode) (*schedapi.TerminateResult, error) {
	var res schedapi.TerminateResult
	return &res, c.sendJSON(ctx, http.MethodPost, "/v1/events/"+url.PathEscape(requestID)+"/terminate",
		url.Values{"mode": {string(mode)}}, nil, &res)
}

// Tracing calls GET /v1/functions/{namespace}/{function}/status-trace.
func (c *Client) Tracing(ctx context.Context, namespace, function string) (*schedapi.Tracing, error) {
	var t schedapi.Tracing
	return &t, c.sendJSON(ctx, http.MethodGet, tracingPath(namespace, function), nil, nil, &t)
}

// SetTracing switches a function's status trace (PUT); nil resets it to the
// scheduler's config file (DELETE).
func (c *Client) SetTracing(ctx context.Context, namespace, function string, on *bool) (*schedapi.Tracing, error) {
	var t schedapi.Tracing
	if on == nil {
		return &t, c.sendJSON(ctx, http.MethodDelete, tracingPath(namespace, function), nil, nil, &t)
	}
	return &t, c.sendJSON(ctx, http.MethodPut, tracingPath(namespace, function), nil, map[string]bool{"enabled": *on}, &t)
}

func tracingPath(namespace, function string) string {
	return "/v1/functions/" + url.PathEscape(namespace) + "/" + url.PathEscape(function) + "/status-trace"
}

func (c *Client) sendJSON(ctx context.Context, method, path string, q url.Values, body, out any) error {
	var (
		rd  io.Reader
		hdr http.Header
	)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd, hdr = strings.NewReader(string(b)), http.Header{"Content-Type": {"application/json"}}
	}
	resp, err := c.send(ctx, method, path, q, rd, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// Watch follows GET /v1/live (or /v1/events/{request_id}/live when
// f.RequestID is set) and calls fn for each change until ctx ends or fn
// fails. A dropped stream is resumed with Last-Event-ID, so nothing is
// missed (a change may come twice). Only the first connection's failure is
// returned as such; later ones are retried with a growing pause.
func (c *Client) Watch(ctx context.Context, f queries.ListFilter, fn func(queries.Event) error) error {
	path, q := "/v1/live", ListValues(f)
	for _, k := range []string{"order_by", "order", "limit", "offset", "cursor"} {
		q.Del(k)
	}
	if f.RequestID != "" {
		path = "/v1/events/" + url.PathEscape(f.RequestID) + "/live"
		q.Del("request_id")
	}
	lastID, first, pause := "", true, 500*time.Millisecond
	for {
		var hdr http.Header
		if lastID != "" {
			hdr = http.Header{"Last-Event-Id": {lastID}}
		}
		resp, err := c.send(ctx, http.MethodGet, path, q, nil, hdr)
		if err != nil {
			var ae *APIError
			if first || errors.As(err, &ae) || ctx.Err() != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		} else {
			first, pause = false, 500*time.Millisecond
			err = readSSE(resp.Body, func(id string, data []byte) error {
				var e queries.Event
				if err := json.Unmarshal(data, &e); err != nil {
					return fmt.Errorf("live: decode a change: %w", err)
				}
				if id != "" {
					lastID = id
				}
				return fn(e)
			})
			resp.Body.Close()
			if ctx.Err() != nil {
				return nil
			}
			if err != nil && !isStreamBreak(err) {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Second)
	}
}

// errCallback marks an error of the caller's function, not of the stream.
type errCallback struct{ error }

func (e errCallback) Unwrap() error { return e.error }

func isStreamBreak(err error) bool {
	var cb errCallback
	return !errors.As(err, &cb)
}

// readSSE reads server-sent events of type "status" (or without a type)
// and calls fn with each one's id and data; comments are skipped.
func readSSE(r io.Reader, fn func(id string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var (
		id, typ string
		data    []string
	)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 && (typ == "" || typ == "status") {
				if err := fn(id, []byte(strings.Join(data, "\n"))); err != nil {
					return errCallback{err}
				}
			}
			typ, data = "", nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "event:"):
			typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
