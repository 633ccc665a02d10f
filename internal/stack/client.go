package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/statustrace/statustrace/scheduler/api"
)

// SchedulerClient calls the scheduler's HTTP API (scheduler/api).
type SchedulerClient struct {
	Base  string
	Token string // the API's bearer token
	HTTP  *http.Client
}

// NewSchedulerClient returns a client for base with connection reuse sized
// for concurrent callers.
func NewSchedulerClient(base, token string) *SchedulerClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &SchedulerClient{Base: base, Token: token, HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *SchedulerClient) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+c.Token)
	return c.HTTP.Do(req)
}

// Invocation is one invoke request.
type Invocation struct {
	Namespace, Function string
	RequestID           string // optional
	TraceParent         string // optional
	Payload             []byte
}

// Invoke posts an invocation and returns the HTTP status and the request
// ID (202: accepted; 429: over the QPS limit, no event).
func (c *SchedulerClient) Invoke(ctx context.Context, inv Invocation) (int, string, error) {
	u := fmt.Sprintf("%s/v1/namespaces/%s/functions/%s/invocations", c.Base, url.PathEscape(inv.Namespace), url.PathEscape(inv.Function))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(inv.Payload))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if inv.RequestID != "" {
		req.Header.Set("X-Request-Id", inv.RequestID)
	}
	if inv.TraceParent != "" {
		req.Header.Set("traceparent", inv.TraceParent)
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, "", fmt.Errorf("invoke %s/%s: %w", inv.Namespace, inv.Function, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Request-Id"), nil
}

// Terminate asks the scheduler to terminate an event (mode graceful or
// immediate) and returns the HTTP status and the state it answered.
func (c *SchedulerClient) Terminate(ctx context.Context, requestID string, mode api.TerminateMode) (int, string, error) {
	u := fmt.Sprintf("%s/v1/events/%s/terminate?mode=%s", c.Base, url.PathEscape(requestID), url.QueryEscape(string(mode)))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, "", fmt.Errorf("terminate %s: %w", requestID, err)
	}
	defer resp.Body.Close()
	var res api.TerminateResult
	if resp.StatusCode == http.StatusAccepted {
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			return resp.StatusCode, "", fmt.Errorf("terminate %s: %w", requestID, err)
		}
	}
	return resp.StatusCode, res.State, nil
}

// Event returns the event as the scheduler sees it.
func (c *SchedulerClient) Event(ctx context.Context, requestID string) (api.EventStatus, error) {
	var ev api.EventStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/v1/events/"+url.PathEscape(requestID), nil)
	if err != nil {
		return ev, err
	}
	resp, err := c.do(req)
	if err != nil {
		return ev, fmt.Errorf("event %s: %w", requestID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return ev, fmt.Errorf("event %s: %s: %s", requestID, resp.Status, bytes.TrimSpace(b))
	}
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
		return ev, fmt.Errorf("event %s: %w", requestID, err)
	}
	return ev, nil
}

// WaitState polls the scheduler until the event is in state (a state name,
// event.State.String()) or ctx ends.
func (c *SchedulerClient) WaitState(ctx context.Context, requestID, state string) error {
	for {
		ev, err := c.Event(ctx, requestID)
		if err == nil && ev.State == state {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("event %s never reached %s (last: %q, %v): %w", requestID, state, ev.State, err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SetStanding puts a namespace's account standing ("good", "arrears",
// "suspended") through the scheduler's API (every node follows it). It needs
// a client with the admin token (Stack.SchedulerAdminToken): tenant tokens
// only read a standing.
func (c *SchedulerClient) SetStanding(ctx context.Context, namespace, standing string) error {
	body, err := json.Marshal(map[string]string{"standing": standing})
	if err != nil {
		return err
	}
	u := fmt.Sprintf("%s/v1/namespaces/%s/standing", c.Base, url.PathEscape(namespace))
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return fmt.Errorf("standing of %s: %w", namespace, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("standing of %s: %s: %s", namespace, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}
