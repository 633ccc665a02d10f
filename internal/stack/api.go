package stack

import (
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
)

// startAPI runs `statustrace serve` on addr against the stack's database.
func startAPI(o Options, addr, token string) (*Process, error) {
	env := []string{"CLICKHOUSE_DSN=" + o.DSN, "STATUSTRACE_DATABASE=" + o.Database, "STATUSTRACE_API_TOKEN=" + token}
	return startProcess("api", o.Bin.Statustrace, []string{"serve", "--listen", addr},
		env, o.WorkDir, filepath.Join(o.WorkDir, "api.log"))
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
