package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// dialectSQL returns the embedded statement name.<dialect>.sql.
func (s *Store) dialectSQL(name string) string { return s.q(mustSQL(name + "." + s.dialect + ".sql")) }

// Due is a waiting job past its event's max age.
type Due struct {
	ID      int64
	Attempt int
}

// DueForExpiry returns up to limit waiting jobs (queued, or waiting for a
// retry) whose event's expiry (Unix ns) is at or before nowNS, oldest first.
func (s *Store) DueForExpiry(ctx context.Context, nowNS int64, limit int) ([]Due, error) {
	rows, err := s.db.QueryContext(ctx, s.dialectSQL("expiry_due"), nowNS, limit)
	if err != nil {
		return nil, fmt.Errorf("store: jobs due for expiry: %w", err)
	}
	defer rows.Close()
	var out []Due
	for rows.Next() {
		var d Due
		if err := rows.Scan(&d.ID, &d.Attempt); err != nil {
			return nil, fmt.Errorf("store: jobs due for expiry: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: jobs due for expiry: %w", err)
	}
	return out, nil
}

// ClaimExpiry ends a job that is still waiting as cancelled, appending
// attemptError (a JSON rivertype.AttemptError) to its errors. ok is false,
// with no error, when the job is no longer waiting: a worker took it, or
// another node claimed it first. Exactly one caller gets ok for a job.
func (s *Store) ClaimExpiry(ctx context.Context, id int64, attemptError []byte) (attempt int, metadata []byte, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, s.dialectSQL("expiry_claim"), string(attemptError), id).Scan(&attempt, &metadata)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("store: expire job %d: %w", id, err)
	}
	return attempt, metadata, true, nil
}
