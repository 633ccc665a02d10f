package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/statustrace/statustrace/event"
	"github.com/statustrace/statustrace/queries"
)

// The action-style endpoint answers the reference platform's event
// management actions with their field names, so existing clients can switch
// by changing the endpoint and the token:
//
//	POST /v1/action
//	X-Action: ListAsyncEvents          (or X-TC-Action, ?Action=, or "Action" in the body)
//	Authorization: Bearer <token>
//	{"FunctionName": "resize", "Status": [...], "Limit": 20}   (Status: public statuses or detailed states)
//
// Answers are {"Response": {..., "RequestId": "..."}}; errors are
// {"Response": {"Error": {"Code": "...", "Message": "..."}, "RequestId": "..."}}
// with the HTTP status of the REST API (400, 401, 404, 500).

// Actions.
const (
	ActionListAsyncEvents     = "ListAsyncEvents"
	ActionGetAsyncEventStatus = "GetAsyncEventStatus"
)

// Error codes of the action endpoint, in the reference platform's style.
const (
	actCodeInvalid      = "InvalidParameterValue"
	actCodeMissing      = "MissingParameter"
	actCodeNotFound     = "ResourceNotFound.AsyncEvent"
	actCodeAuth         = "AuthFailure"
	actCodeInternal     = "InternalError"
	actCodeUnavailable  = "InternalError.Timeout"
	actCodeInvalidAct   = "InvalidAction"
	actCodeBodyTooLarge = "RequestSizeLimitExceeded"
)

// maxActionBody bounds an action request body.
const maxActionBody = 1 << 20

// StringList is a JSON string or array of strings.
type StringList []string

// UnmarshalJSON accepts "x", ["x", "y"] and null.
func (l *StringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*l = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = StringList{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return errors.New("want a string or an array of strings")
	}
	*l = ss
	return nil
}

// Millis is a time given as Unix milliseconds (a JSON number or a numeric
// string), an RFC 3339 string, or "2006-01-02 15:04:05" in UTC.
type Millis struct{ time.Time }

// UnmarshalJSON reads the forms Millis accepts.
func (m *Millis) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		m.Time = time.Time{}
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if s == "" {
		m.Time = time.Time{}
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 || n > 9_000_000_000_000 {
			return fmt.Errorf("%d is not a Unix time in milliseconds", n)
		}
		m.Time = time.UnixMilli(n).UTC()
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			m.Time = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("%.40q is not Unix milliseconds or a date-time", s)
}

// TimeInterval is a half-open interval [Start, End).
type TimeInterval struct {
	Start Millis `json:"Start"`
	End   Millis `json:"End"`
}

// ActionRequest holds the fields of both actions (and the common ones).
type ActionRequest struct {
	Action            string        `json:"Action"`
	Version           string        `json:"Version"`
	Region            string        `json:"Region"`
	FunctionName      string        `json:"FunctionName"`
	Namespace         string        `json:"Namespace"`
	Qualifier         string        `json:"Qualifier"`
	InvokeType        StringList    `json:"InvokeType"`
	Status            StringList    `json:"Status"`
	StartTimeInterval *TimeInterval `json:"StartTimeInterval"`
	EndTimeInterval   *TimeInterval `json:"EndTimeInterval"`
	Order             string        `json:"Order"`
	Orderby           string        `json:"Orderby"`
	Offset            *int64        `json:"Offset"`
	Limit             *int64        `json:"Limit"`
	InvokeRequestId   string        `json:"InvokeRequestId"` //nolint:revive // the reference field name
	Cursor            string        `json:"Cursor"`          // extension: keyset paging
	GraceShutdown     *bool         `json:"GraceShutdown"`   // TerminateAsyncEvent
}

// AsyncEvent is one item of EventList.
type AsyncEvent struct {
	InvokeRequestId string `json:"InvokeRequestId"` //nolint:revive
	InvokeType      string `json:"InvokeType"`
	Qualifier       string `json:"Qualifier"`
	Status          string `json:"Status"`
	StartTime       string `json:"StartTime"` // "2006-01-02 15:04:05.000" UTC
	EndTime         string `json:"EndTime"`   // "" while running
	// Extensions.
	StartTimeMs int64  `json:"StartTimeMs"`
	EndTimeMs   int64  `json:"EndTimeMs"` // 0 while running
	State       string `json:"State"`
	Namespace   string `json:"Namespace"`
	Function    string `json:"FunctionName"`
}

// AsyncEventStatus is the Result of GetAsyncEventStatus.
type AsyncEventStatus struct {
	Status          string `json:"Status"`
	StatusCode      int    `json:"StatusCode"`
	InvokeRequestId string `json:"InvokeRequestId"` //nolint:revive
	// Extensions.
	State        string `json:"State"`
	StartTime    string `json:"StartTime"`
	EndTime      string `json:"EndTime"`
	StartTimeMs  int64  `json:"StartTimeMs"`
	EndTimeMs    int64  `json:"EndTimeMs"`
	Attempts     uint32 `json:"Attempts"`
	ErrorCode    string `json:"ErrorCode"`
	ErrorMessage string `json:"ErrorMessage"`
	TraceId      string `json:"TraceId"` //nolint:revive
}

const actionTimeLayout = "2006-01-02 15:04:05.000"

func actionTime(t *time.Time) (string, int64) {
	if t == nil || t.IsZero() {
		return "", 0
	}
	return t.UTC().Format(actionTimeLayout), t.UnixMilli()
}

// StatusCode maps an event to the reference platform's StatusCode: 0 while
// running, 200 when finished; for a failed or aborted event its error code
// when that is an HTTP error status (400-599, plain digits), else 500
// (failed, expired) or 499 (aborted). An error code such as "200" must not
// make a failed event read as a success.
func StatusCode(status, errorCode string) int {
	switch status {
	case event.PublicRunning:
		return 0
	case event.PublicFinished:
		return 200
	}
	if n, ok := httpErrorStatus(errorCode); ok {
		return n
	}
	if status == event.PublicAborted {
		return 499
	}
	return 500
}

// httpErrorStatus reads code as an HTTP error status: exactly three digits,
// 400 to 599 (no sign, no leading zero, no spaces).
func httpErrorStatus(code string) (int, bool) {
	if len(code) != 3 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(code); i++ {
		c := code[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 400 && n <= 599
}

func (s *Server) action() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := requestID(r.Context())
		// Authenticate before reading anything a stranger sends.
		p, ok := s.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="statustrace"`)
			actionError(w, rid, http.StatusUnauthorized, actCodeAuth, "missing or unknown API token (Authorization: Bearer <token>)")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				actionError(w, rid, http.StatusRequestEntityTooLarge, actCodeBodyTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxActionBody))
				return
			}
			actionError(w, rid, http.StatusBadRequest, actCodeInvalid, "cannot read the body")
			return
		}
		var req ActionRequest
		if err := decodeAction(body, &req); err != nil {
			actionError(w, rid, http.StatusBadRequest, actCodeInvalid, err.Error())
			return
		}
		q, err := parseQuery(r.URL.RawQuery)
		if err != nil {
			actionError(w, rid, http.StatusBadRequest, actCodeInvalid, err.Error())
			return
		}
		act := firstNonEmpty(r.Header.Get("X-Action"), r.Header.Get("X-TC-Action"), q.Get("Action"), req.Action)
		ctx, cancel := s.queryCtx(r)
		defer cancel()
		var resp map[string]any
		switch act {
		case ActionListAsyncEvents:
			resp, err = s.listAsyncEvents(ctx, p, &req)
		case ActionGetAsyncEventStatus:
			resp, err = s.getAsyncEventStatus(ctx, p, &req)
		case ActionTerminateAsyncEvent:
			resp, err = s.terminateAsyncEvent(ctx, p, &req)
		case "":
			actionError(w, rid, http.StatusBadRequest, actCodeMissing, "no Action (X-Action header, ?Action= or \"Action\" in the body)")
			return
		default:
			actionError(w, rid, http.StatusBadRequest, actCodeInvalidAct, fmt.Sprintf("unknown Action %.60q (want %s, %s or %s)", act, ActionListAsyncEvents, ActionGetAsyncEventStatus, ActionTerminateAsyncEvent))
			return
		}
		if err != nil {
			status, code, msg := s.ActionError(r, err)
			if code == codeEnded || code == codeNotConfigured || code == codeSchedulerError {
				actionError(w, rid, status, actionCode(code), msg)
				return
			}
			var me missingError
			switch {
			case errors.As(err, &me):
				actionError(w, rid, http.StatusBadRequest, actCodeMissing, msg)
			case status == http.StatusBadRequest:
				actionError(w, rid, status, actCodeInvalid, msg)
			case status == http.StatusNotFound:
				actionError(w, rid, status, actCodeNotFound, "no async event with this InvokeRequestId")
			case status == http.StatusServiceUnavailable:
				actionError(w, rid, status, actCodeUnavailable, msg)
			default:
				actionError(w, rid, status, actCodeInternal, msg)
			}
			return
		}
		resp["RequestId"] = rid
		writeJSON(w, http.StatusOK, map[string]any{"Response": resp})
	})
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

func actionError(w http.ResponseWriter, rid string, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"Response": map[string]any{
		"Error":     map[string]string{"Code": code, "Message": msg},
		"RequestId": rid,
	}})
}

// missingError is a required field that is absent (MissingParameter).
type missingError struct{ *queries.ParamError }

func missing(field string) error {
	return missingError{&queries.ParamError{Param: field, Reason: "required"}}
}

func (m missingError) Unwrap() error { return m.ParamError }

func interval(name string, ti *TimeInterval) (queries.TimeRange, error) {
	if ti == nil {
		return queries.TimeRange{}, nil
	}
	r := queries.TimeRange{From: ti.Start.Time, To: ti.End.Time}
	if !r.From.IsZero() && !r.To.IsZero() && !r.From.Before(r.To) {
		return r, bad(name, "inverted or empty interval: Start is not before End")
	}
	return r, nil
}

// listFilter maps a ListAsyncEvents request to a list filter. Namespace
// defaults to "default" and Order to DESC, Orderby to StartTime, Limit to
// 20, as on the reference platform.
func listFilter(req *ActionRequest) (queries.ListFilter, error) {
	var f queries.ListFilter
	if req.FunctionName == "" {
		return f, missing("FunctionName")
	}
	f.Function, f.Namespace, f.Qualifier, f.RequestID = req.FunctionName, req.Namespace, req.Qualifier, req.InvokeRequestId
	if f.Namespace == "" {
		f.Namespace = "default"
	}
	for k, v := range map[string]string{"FunctionName": f.Function, "Namespace": f.Namespace, "Qualifier": f.Qualifier} {
		if err := checkKey(k, v); err != nil {
			return f, err
		}
	}
	if f.RequestID != "" {
		if err := checkKey("InvokeRequestId", f.RequestID); err != nil {
			return f, err
		}
	}
	if err := capValues("InvokeType", len(req.InvokeType)); err != nil {
		return f, err
	}
	if err := capValues("Status", len(req.Status)); err != nil {
		return f, err
	}
	for _, v := range req.InvokeType {
		if err := checkKey("InvokeType", v); err != nil {
			return f, err
		}
	}
	f.InvokeTypes = req.InvokeType
	for _, v := range req.Status {
		n, err := queries.NormalizeStatus(v)
		if err != nil {
			return f, bad("Status", "unknown status %.40q (want RUNNING, FINISHED, FAILED or ABORTED)", v)
		}
		f.Statuses = append(f.Statuses, n)
	}
	var err error
	if f.Start, err = interval("StartTimeInterval", req.StartTimeInterval); err != nil {
		return f, err
	}
	if f.End, err = interval("EndTimeInterval", req.EndTimeInterval); err != nil {
		return f, err
	}
	switch strings.ToUpper(req.Order) {
	case "", "DESC":
		f.Desc = true
	case "ASC":
		f.Desc = false
	default:
		return f, bad("Order", "%.20q: want ASC or DESC", req.Order)
	}
	switch req.Orderby {
	case "", "StartTime":
		f.OrderBy = queries.OrderByStartTime
	case "EndTime":
		f.OrderBy = queries.OrderByEndTime
	default:
		return f, bad("Orderby", "%.20q: want StartTime or EndTime", req.Orderby)
	}
	if req.Offset != nil {
		if *req.Offset < 0 || *req.Offset > MaxOffset {
			return f, bad("Offset", "%d out of range 0..%d (page deeper with Cursor)", *req.Offset, MaxOffset)
		}
		f.Offset = uint64(*req.Offset)
	}
	if req.Limit != nil {
		if *req.Limit < 1 || *req.Limit > queries.MaxLimit {
			return f, bad("Limit", "%d out of range 1..%d", *req.Limit, queries.MaxLimit)
		}
		f.Limit = int(*req.Limit)
	}
	f.Cursor = req.Cursor
	return f, f.Validate()
}

func (s *Server) listAsyncEvents(ctx context.Context, p Principal, req *ActionRequest) (map[string]any, error) {
	f, err := listFilter(req)
	if err != nil {
		return nil, err
	}
	page, err := s.cfg.Backend.List(ctx, p.Scope(), f)
	if err != nil {
		return nil, err
	}
	list := make([]AsyncEvent, 0, len(page.Events))
	for _, e := range page.Events {
		st := e.StartTime
		start, startMs := actionTime(&st)
		end, endMs := actionTime(e.EndTime)
		list = append(list, AsyncEvent{
			InvokeRequestId: e.RequestID, InvokeType: e.InvokeType, Qualifier: e.Qualifier, Status: e.Status,
			StartTime: start, EndTime: end, StartTimeMs: startMs, EndTimeMs: endMs,
			State: e.State, Namespace: e.Namespace, Function: e.Function,
		})
	}
	resp := map[string]any{"TotalCount": page.Total, "EventList": list}
	if page.NextCursor != "" {
		resp["NextCursor"] = page.NextCursor
	}
	return resp, nil
}

func (s *Server) getAsyncEventStatus(ctx context.Context, p Principal, req *ActionRequest) (map[string]any, error) {
	if req.InvokeRequestId == "" {
		return nil, missing("InvokeRequestId")
	}
	if err := checkKey("InvokeRequestId", req.InvokeRequestId); err != nil {
		return nil, err
	}
	d, err := s.cfg.Backend.Get(ctx, p.Scope(), req.InvokeRequestId)
	if err != nil {
		return nil, err
	}
	st := d.StartTime
	start, startMs := actionTime(&st)
	end, endMs := actionTime(d.EndTime)
	return map[string]any{"Result": AsyncEventStatus{
		Status: d.Status, StatusCode: StatusCode(d.Status, d.ErrorCode), InvokeRequestId: d.RequestID,
		State: d.State, StartTime: start, EndTime: end, StartTimeMs: startMs, EndTimeMs: endMs,
		Attempts: d.Attempts, ErrorCode: d.ErrorCode, ErrorMessage: d.ErrorMessage, TraceId: d.TraceID,
	}}, nil
}
