package api

import (
	"context"

	"github.com/statustrace/statustrace/queries"
)

// BacklogBackend is a Backend that also reports what waits now; GET
// /v1/stats adds it to its answer (field "backlog") when the Backend has it
// (*queries.Store does).
type BacklogBackend interface {
	Backlog(ctx context.Context, sc queries.Scope, q queries.BacklogQuery) ([]queries.Backlog, error)
}
