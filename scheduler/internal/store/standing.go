package store

import (
	"context"
	"embed"
	"fmt"
	"time"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

// mustSQL returns an embedded statement; a missing file is a build mistake.
func mustSQL(name string) string {
	b, err := sqlFiles.ReadFile("sql/" + name)
	if err != nil {
		panic(fmt.Sprintf("store: embedded %s: %v", name, err))
	}
	return string(b)
}

var (
	sqlStandingSet   = mustSQL("standing_set.sql")
	sqlStandingReset = mustSQL("standing_reset.sql")
	sqlStandingList  = mustSQL("standing_list.sql")
)

// SetStanding records a tenant's (namespace "") or a namespace's standing;
// it overrides the config file on every node until ResetStanding. The
// caller validates the value.
func (s *Store) SetStanding(ctx context.Context, tenant, namespace, standing string) error {
	if _, err := s.db.ExecContext(ctx, s.q(sqlStandingSet), tenant, namespace, standing, time.Now().UTC()); err != nil {
		return fmt.Errorf("store: set standing of %s/%s: %w", tenant, namespace, err)
	}
	return nil
}

// ResetStanding removes a recorded standing: the config file decides again.
func (s *Store) ResetStanding(ctx context.Context, tenant, namespace string) error {
	if _, err := s.db.ExecContext(ctx, s.q(sqlStandingReset), tenant, namespace); err != nil {
		return fmt.Errorf("store: reset standing of %s/%s: %w", tenant, namespace, err)
	}
	return nil
}

// Standings returns a tenant's recorded standings by namespace ("" is the
// whole tenant).
func (s *Store) Standings(ctx context.Context, tenant string) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(sqlStandingList), tenant)
	if err != nil {
		return nil, fmt.Errorf("store: read standings: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var ns, st string
		if err := rows.Scan(&ns, &st); err != nil {
			return nil, fmt.Errorf("store: read standings: %w", err)
		}
		out[ns] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read standings: %w", err)
	}
	return out, nil
}
