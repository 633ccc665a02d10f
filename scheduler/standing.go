package scheduler

import (
	"context"
	"fmt"
	"maps"

	"github.com/statustrace/statustrace/scheduler/api"
	"github.com/statustrace/statustrace/scheduler/config"
)

// standings is the tenant's standing in force on this node, by namespace
// ("" is the whole tenant): the config file overlaid with what any node
// recorded in the shared database.
type standings = map[string]config.Standing

// refreshStanding re-reads the recorded standings.
func (s *Scheduler) refreshStanding(ctx context.Context) error {
	rec, err := s.store.Standings(ctx, s.cfg.Tenant)
	if err != nil {
		return err
	}
	m := standings{"": s.cfg.Account.Standing}
	maps.Copy(m, s.cfg.Account.Namespaces)
	for ns, v := range rec {
		st, err := config.ParseStanding(v)
		if err != nil {
			// Written by something else than the API; refusing is safer
			// than ignoring an account's arrears.
			s.log.Warn("unreadable account standing, treated as suspended", "namespace", ns, "err", err)
			st = config.StandingSuspended
		}
		m[ns] = st
	}
	s.standing.Store(&m)
	return nil
}

// standingOf is the standing that applies to a namespace's invocations: the
// worse of the tenant's and the namespace's own.
func (s *Scheduler) standingOf(namespace string) config.Standing {
	m := *s.standing.Load()
	return config.Worse(m[""], m[namespace])
}

// admit refuses an invocation for an account that may not invoke.
func (s *Scheduler) admit(ctx context.Context, f *function) error {
	switch s.standingOf(f.cfg.Namespace) {
	case config.StandingArrears:
		s.metrics.rejected.Add(ctx, 1, f.attrs, reasonArrears)
		return fmt.Errorf("%w: tenant %s, namespace %s", api.ErrArrears, s.cfg.Tenant, f.cfg.Namespace)
	case config.StandingSuspended:
		s.metrics.rejected.Add(ctx, 1, f.attrs, reasonSuspended)
		return fmt.Errorf("%w: tenant %s, namespace %s", api.ErrSuspended, s.cfg.Tenant, f.cfg.Namespace)
	}
	return nil
}

func (s *Scheduler) knownNamespace(namespace string) bool {
	if namespace == "" {
		return true
	}
	for _, f := range s.fns {
		if f.cfg.Namespace == namespace {
			return true
		}
	}
	return false
}

// SetStanding records the tenant's (namespace "") or a namespace's
// standing for every node; nil goes back to the config file. Events already
// accepted are not touched: they run to their end.
func (s *Scheduler) SetStanding(ctx context.Context, namespace string, standing *string) (api.Standing, error) {
	if !s.knownNamespace(namespace) {
		return api.Standing{}, fmt.Errorf("%w: namespace %s", api.ErrNotFound, namespace)
	}
	if standing == nil {
		if err := s.store.ResetStanding(ctx, s.cfg.Tenant, namespace); err != nil {
			return api.Standing{}, fmt.Errorf("scheduler: %w", err)
		}
	} else {
		st, err := config.ParseStanding(*standing)
		if err != nil {
			return api.Standing{}, fmt.Errorf("%w: %v", api.ErrInvalid, err)
		}
		if err := s.store.SetStanding(ctx, s.cfg.Tenant, namespace, string(st)); err != nil {
			return api.Standing{}, fmt.Errorf("scheduler: %w", err)
		}
	}
	if err := s.refreshStanding(ctx); err != nil {
		return api.Standing{}, fmt.Errorf("scheduler: %w", err)
	}
	return s.Standing(ctx, namespace)
}

// Standing reports the standing in force for the tenant (namespace "") or
// a namespace on this node.
func (s *Scheduler) Standing(_ context.Context, namespace string) (api.Standing, error) {
	if !s.knownNamespace(namespace) {
		return api.Standing{}, fmt.Errorf("%w: namespace %s", api.ErrNotFound, namespace)
	}
	return api.Standing{Tenant: s.cfg.Tenant, Namespace: namespace, Standing: string(s.standingOf(namespace))}, nil
}
