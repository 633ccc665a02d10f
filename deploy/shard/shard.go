// Package shard runs a sharded statustrace on one machine: local endpoints
// (deploy/local) as shards of one server each, and a router endpoint whose
// engine declares them as a cluster (remote_servers, native protocol) and
// holds the Distributed tables. Every node is migrated on its own
// (migrate.Options.PerNode: no Keeper, so no ON CLUSTER and no replication).
//
// Writes go through the router's Distributed transitions table, sharded by
// cityHash64(tenant, request_id): an event's transitions, its events row
// and its stats rows all live on one shard (the materialized views run
// there). Reads go to the router with RouterSettings.
package shard

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/statustrace/statustrace/internal/freeport"
)

// Cluster is the name the router's configuration gives the shards.
const Cluster = "statustrace_local"

// RouterSettings are the settings clients of the router send (as DSN
// parameters):
//   - distributed_foreground_insert=1: an INSERT returns once every shard
//     has its rows (acknowledged = stored), as in the Kubernetes cluster;
//   - distributed_group_by_no_merge=1: every shard runs its part of a read
//     to the end and the router only concatenates (and runs what lies
//     outside the Distributed read). The local endpoint cannot run a query
//     to an intermediate stage (chDB's API runs queries to the end), which a
//     merge on the router needs; the engine's own error without it is
//     "Conversion from UInt64 to AggregateFunction(count) is not supported".
//     It is exact here because an event lives on one shard: per-event reads
//     are complete on their shard, and the statistics sum per-shard counts
//     of disjoint events in an outer query the router runs itself.
var RouterSettings = map[string]string{
	"distributed_foreground_insert": "1",
	"distributed_group_by_no_merge": "1",
}

//go:embed remote_servers.xml.tmpl
var remoteServersTmpl string

var remoteServers = template.Must(template.New("remote_servers").Parse(remoteServersTmpl))

// Endpoint is one running local endpoint.
type Endpoint struct {
	Name     string
	State    string // its state folder
	HTTPAddr string
	TCPAddr  string
}

// DSN is the endpoint's native-protocol DSN with the database and settings.
func (e Endpoint) DSN(database string, settings map[string]string) string {
	q := []string{}
	for k, v := range settings {
		q = append(q, k+"="+v)
	}
	dsn := "clickhouse://" + e.TCPAddr + "/" + database
	if len(q) > 0 {
		dsn += "?" + strings.Join(q, "&")
	}
	return dsn
}

// Set is a running sharded deployment.
type Set struct {
	root   string
	Shards []Endpoint
	Router Endpoint
}

// Start starts n shard endpoints and the router, each with its state and
// data under dir, on free ports of 127.0.0.1. Every node loads the same
// cluster configuration, as the servers of a real cluster do (a Distributed
// table cannot be created on a node that does not know its cluster). root
// is the repository (deploy/local/start.sh). On error, what started is
// stopped.
func Start(ctx context.Context, root, dir string, n int) (*Set, error) {
	if n < 1 {
		return nil, fmt.Errorf("shards: want at least 1, got %d", n)
	}
	s := &Set{root: root}
	newEndpoint := func(name string) (Endpoint, error) {
		e := Endpoint{Name: name, State: filepath.Join(dir, name)}
		// Two distinct ports: both held until both are found.
		ports, err := freeport.Ports(2)
		if err != nil {
			return e, err
		}
		e.HTTPAddr, e.TCPAddr = fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
		return e, nil
	}
	for i := range n {
		e, err := newEndpoint(fmt.Sprintf("shard%d", i+1))
		if err != nil {
			return nil, err
		}
		s.Shards = append(s.Shards, e)
	}
	var err error
	if s.Router, err = newEndpoint("router"); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "remote_servers.xml")
	if err := writeConfig(cfg, s.Shards); err != nil {
		return nil, err
	}
	for i, e := range s.Nodes() {
		if err := s.start(ctx, e, cfg); err != nil {
			s.stop(s.Nodes()[:i])
			return nil, err
		}
	}
	return s, nil
}

// Nodes are the shards and the router (the nodes migrations run on).
func (s *Set) Nodes() []Endpoint { return append(append([]Endpoint{}, s.Shards...), s.Router) }

func writeConfig(path string, shards []Endpoint) error {
	type hostPort struct{ Host, Port string }
	data := struct {
		Cluster string
		Shards  []hostPort
	}{Cluster: Cluster}
	for _, e := range shards {
		h, p, err := net.SplitHostPort(e.TCPAddr)
		if err != nil {
			return fmt.Errorf("shard %s: %w", e.Name, err)
		}
		data.Shards = append(data.Shards, hostPort{h, p})
	}
	var b bytes.Buffer
	if err := remoteServers.Execute(&b, data); err != nil {
		return fmt.Errorf("render remote_servers: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write router configuration: %w", err)
	}
	return nil
}

func (s *Set) start(ctx context.Context, e Endpoint, config string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.root, "deploy", "local", "start.sh"))
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(),
		"STATUSTRACE_LOCAL_ADDR="+e.HTTPAddr, "STATUSTRACE_LOCAL_TCP_ADDR="+e.TCPAddr,
		"STATUSTRACE_LOCAL_STATE="+e.State, "STATUSTRACE_LOCAL_ENGINE=native",
		"STATUSTRACE_LOCAL_DATA=", "STATUSTRACE_LOCAL_CONFIG="+config)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("start %s endpoint: %w: %s", e.Name, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Stop stops every endpoint (their data folders stay).
func (s *Set) Stop() error { return s.stop(s.Nodes()) }

func (s *Set) stop(nodes []Endpoint) error {
	var errs []error
	for _, e := range nodes {
		cmd := exec.Command(filepath.Join(s.root, "deploy", "local", "stop.sh"))
		cmd.Env = append(os.Environ(), "STATUSTRACE_LOCAL_ADDR="+e.HTTPAddr, "STATUSTRACE_LOCAL_TCP_ADDR="+e.TCPAddr,
			"STATUSTRACE_LOCAL_STATE="+e.State)
		if out, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w: %s", e.Name, err, out))
		}
	}
	return errors.Join(errs...)
}
