package queries

import (
	"context"
	"fmt"
	"time"
)

// Backlog is one function's events waiting for a worker now.
type Backlog struct {
	Namespace string `json:"namespace"`
	Function  string `json:"function"`
	Qualifier string `json:"qualifier"`
	Waiting   uint64 `json:"waiting"`
	// OldestAcceptedAt is when the oldest waiting event was accepted;
	// OldestAgeSeconds is its age at the time of the query.
	OldestAcceptedAt time.Time `json:"oldest_accepted_at"`
	OldestAgeSeconds float64   `json:"oldest_age_seconds"`
}

// BacklogQuery narrows Backlog to some functions (empty: all).
type BacklogQuery struct {
	Namespace, Function, Qualifier string
	// Now is the instant ages are measured at; zero: time.Now().
	Now time.Time
}

// Backlog returns, per function, the events now waiting (queued or waiting
// for a retry) and the age of the oldest, oldest first. It reads the
// tenant's events (see sql/backlog.sql), not the per-minute stats.
func (s *Store) Backlog(ctx context.Context, sc Scope, q BacklogQuery) ([]Backlog, error) {
	if err := sc.validate(); err != nil {
		return nil, err
	}
	now := q.Now
	if now.IsZero() {
		now = time.Now()
	}
	rows, err := s.conn.Query(ctx, compiled.sql["backlog"], keyArgs(scopeArgs(sc), q.Namespace, q.Function, q.Qualifier)...)
	if err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	defer rows.Close()
	out := []Backlog{}
	for rows.Next() {
		var b Backlog
		var oldest int64
		if err := rows.Scan(&b.Namespace, &b.Function, &b.Qualifier, &b.Waiting, &oldest); err != nil {
			return nil, fmt.Errorf("backlog row: %w", err)
		}
		b.OldestAcceptedAt = time.UnixMilli(oldest).UTC()
		b.OldestAgeSeconds = max(now.Sub(b.OldestAcceptedAt).Seconds(), 0)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("backlog rows: %w", err)
	}
	return out, nil
}
