package queries

import (
	"context"
	"fmt"
)

// MaxChanges bounds one Changes answer; a poller that gets a full answer
// asks again from the last change it got.
const MaxChanges = 500

// Changes returns the events matching f (its filters, not its order or
// paging) whose last transition is later than sinceNs (Unix ns), oldest
// change first, at most limit (1..MaxChanges) of them. The live streams
// poll it from a watermark.
func (s *Store) Changes(ctx context.Context, sc Scope, f ListFilter, sinceNs int64, limit int) ([]Event, error) {
	if err := sc.validate(); err != nil {
		return nil, err
	}
	f.Cursor, f.Offset, f.Limit = "", 0, 0
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if limit < 1 || limit > MaxChanges {
		return nil, paramErr("limit", "%d out of range 1..%d", limit, MaxChanges)
	}
	a := listArgs(sc, &f).add("since_ns", sinceNs).add("limit", uint32(limit))
	rows, err := s.conn.Query(ctx, compiled.sql["event_changes"], a...)
	if err != nil {
		return nil, fmt.Errorf("event changes: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("event changes row: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("event changes rows: %w", err)
	}
	return out, nil
}
