package demofuncs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func post(t *testing.T, ctx context.Context, url, rid string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("X-Request-Id", rid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestFunctions(t *testing.T) {
	s := New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx := context.Background()

	assert.Equal(t, 200, post(t, ctx, srv.URL+"/succeed", "a"))
	assert.Equal(t, 500, post(t, ctx, srv.URL+"/fail", "b"))
	assert.Equal(t, 503, post(t, ctx, srv.URL+"/flaky?failures=2", "c"))
	assert.Equal(t, 503, post(t, ctx, srv.URL+"/flaky?failures=2", "c"))
	assert.Equal(t, 200, post(t, ctx, srv.URL+"/flaky?failures=2", "c"))
	assert.Equal(t, 400, post(t, ctx, srv.URL+"/flaky?failures=x", "d"))
	assert.Equal(t, 200, post(t, ctx, srv.URL+"/slow?delay=1ms", "e"))
	assert.Equal(t, 1, s.Calls("a"))
	assert.Equal(t, 3, s.Calls("c"))
	assert.Equal(t, 0, s.Calls("zzz"))
}

func TestSlowGivesUpWithCaller(t *testing.T) {
	s := New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.Equal(t, 0, post(t, ctx, srv.URL+"/slow?delay=1h", "s"), "the call is abandoned, not answered")
}

func TestUntilTerminated(t *testing.T) {
	s := New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx := context.Background()

	done := make(chan int, 1)
	go func() { done <- post(t, ctx, srv.URL+"/until-terminated", "u") }()
	require.Eventually(t, func() bool { return s.Running() == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 404, post(t, ctx, srv.URL+"/until-terminated/terminate", "other"))
	assert.Equal(t, 202, post(t, ctx, srv.URL+"/until-terminated/terminate", "u"))
	assert.Equal(t, 200, <-done)
	assert.Equal(t, 0, s.Running())
	assert.Equal(t, 1, s.Calls("u"), "terminate notices are not calls")
}
