package stack

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
)

// startAPI runs `statustrace serve` on addr against the stack's database,
// with one token for the scheduler's tenant, and the scheduler's API for
// actions. The collector has created the schema by then; serve installs the
// query views on start.
func startAPI(o Options, addr, token, tenant, schedulerURL, schedulerToken string) (*Process, error) {
	dsn, err := WithDatabase(o.DSN, o.Database)
	if err != nil {
		return nil, err
	}
	env := []string{
		"CLICKHOUSE_DSN=" + dsn,
		"STATUSTRACE_API_TOKENS=" + token + "=" + tenant,
		"STATUSTRACE_SCHEDULER_TOKEN=" + schedulerToken,
	}
	args := append([]string{"serve", "--listen", addr, "--log-level", "info",
		"--scheduler-url", schedulerURL, "--scheduler-tenant", tenant}, o.APIArgs...)
	return startProcess("api", o.Bin.Statustrace, args, env, o.WorkDir, filepath.Join(o.WorkDir, "api.log"))
}

// WithDatabase returns the DSN with its database (the URL path) set.
func WithDatabase(dsn, database string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("ClickHouse DSN %q: want scheme://[user[:password]@]host:port[/database][?options]", redact(dsn))
	}
	u.Path = "/" + database
	u.RawPath = ""
	return u.String(), nil
}

// randomToken makes an API token (the API wants at least 16 characters).
func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "demo-" + hex.EncodeToString(b[:])
}
