// Package schedclient calls the reference scheduler's HTTP API
// (scheduler/api) with a bearer token: what `statustrace serve` uses to
// proxy a tenant's actions (terminate, status trace on/off) to the
// scheduler, so a browser or API client never talks to the scheduler.
package schedclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/statustrace/statustrace/scheduler/api"
)

// Client calls one scheduler.
type Client struct {
	Base  string // http://host:port
	Token string
	HTTP  *http.Client
}

// New returns a client for base (an http or https URL) with token.
func New(base, token string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("scheduler URL %q: want http(s)://host:port", base)
	}
	if token == "" {
		return nil, errors.New("scheduler token: empty (the scheduler's API needs one of its api_tokens)")
	}
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 30 * time.Second}}, nil
}

// Error is an error answer of the scheduler.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("scheduler: %d %s: %s", e.Status, e.Code, e.Message)
}

func (c *Client) call(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return fmt.Errorf("scheduler request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("scheduler %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		var e api.Error
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			e = api.Error{Code: "unknown", Message: strings.TrimSpace(string(data))}
		}
		return &Error{Status: resp.StatusCode, Code: e.Code, Message: e.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("scheduler %s %s: answer: %w", method, path, err)
		}
	}
	return nil
}

// Terminate asks the scheduler to stop an event.
func (c *Client) Terminate(ctx context.Context, requestID string, mode api.TerminateMode) (api.TerminateResult, error) {
	var res api.TerminateResult
	err := c.call(ctx, http.MethodPost, "/v1/events/"+url.PathEscape(requestID)+"/terminate?mode="+url.QueryEscape(string(mode)), nil, &res)
	return res, err
}

func tracingPath(namespace, function string) string {
	return "/v1/namespaces/" + url.PathEscape(namespace) + "/functions/" + url.PathEscape(function) + "/status-trace"
}

// Tracing returns a function's status-trace switch.
func (c *Client) Tracing(ctx context.Context, namespace, function string) (api.Tracing, error) {
	var t api.Tracing
	err := c.call(ctx, http.MethodGet, tracingPath(namespace, function), nil, &t)
	return t, err
}

// SetTracing switches status trace for a function; nil resets it to the
// scheduler's config file.
func (c *Client) SetTracing(ctx context.Context, namespace, function string, on *bool) (api.Tracing, error) {
	var t api.Tracing
	var err error
	if on == nil {
		err = c.call(ctx, http.MethodDelete, tracingPath(namespace, function), nil, &t)
	} else {
		err = c.call(ctx, http.MethodPut, tracingPath(namespace, function), map[string]bool{"enabled": *on}, &t)
	}
	return t, err
}
