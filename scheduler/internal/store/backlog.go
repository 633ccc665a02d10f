package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Backlog is one function's waiting events.
type Backlog struct {
	FunctionKey
	Waiting int64
	// OldestAgeSeconds is how long ago the oldest waiting event was accepted.
	OldestAgeSeconds float64
}

// Backlog returns, per function with waiting events (queued or waiting for
// a retry), their number and the age of the oldest.
func (s *Store) Backlog(ctx context.Context) ([]Backlog, error) {
	rows, err := s.db.QueryContext(ctx, s.dialectSQL("backlog"))
	if err != nil {
		return nil, fmt.Errorf("store: backlog: %w", err)
	}
	defer rows.Close()
	var out []Backlog
	for rows.Next() {
		var b Backlog
		var ns, fn sql.NullString
		var age sql.NullFloat64
		if err := rows.Scan(&ns, &fn, &b.Waiting, &age); err != nil {
			return nil, fmt.Errorf("store: backlog: %w", err)
		}
		b.Namespace, b.Function, b.OldestAgeSeconds = ns.String, fn.String, max(age.Float64, 0)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: backlog: %w", err)
	}
	return out, nil
}
