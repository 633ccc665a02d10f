package chlocal

import (
	"fmt"

	chproto "github.com/ClickHouse/ch-go/proto"
)

// ClickHouse's client interfaces (ClientInfo::Interface) that matter here:
// clients send TCP; a ClickHouse server querying a shard sends TCP or, when
// the server is chDB/clickhouse-local (another local endpoint serving a
// Distributed table or remote()), LOCAL.
const (
	interfaceTCP  = 1
	interfaceHTTP = 2
)

// decodeQuery reads a Query packet. It is ch-go's Query.DecodeAware except
// for the client info, which ch-go reads only from TCP clients: a Distributed
// table or remote() on chDB sends interface LOCAL (6), whose client info has
// no client name or version fields.
func decodeQuery(r *chproto.Reader, ver int) (chproto.Query, error) {
	var q chproto.Query
	var err error
	if q.ID, err = r.Str(); err != nil {
		return q, fmt.Errorf("query id: %w", err)
	}
	if chproto.FeatureClientWriteInfo.In(ver) {
		if err := skipClientInfo(r, ver); err != nil {
			return q, fmt.Errorf("client info: %w", err)
		}
	}
	for {
		var s chproto.Setting
		if err := s.Decode(r); err != nil {
			return q, fmt.Errorf("setting: %w", err)
		}
		if s.Key == "" {
			break
		}
		q.Settings = append(q.Settings, s)
	}
	if chproto.FeatureInterServerSecret.In(ver) {
		if q.Secret, err = r.Str(); err != nil {
			return q, fmt.Errorf("inter-server secret: %w", err)
		}
	}
	stage, err := r.UVarInt()
	if err != nil {
		return q, fmt.Errorf("stage: %w", err)
	}
	q.Stage = chproto.Stage(stage)
	c, err := r.UVarInt()
	if err != nil {
		return q, fmt.Errorf("compression: %w", err)
	}
	q.Compression = chproto.Compression(c)
	if !q.Compression.IsACompression() {
		return q, fmt.Errorf("unknown compression %d", c)
	}
	if q.Body, err = r.Str(); err != nil {
		return q, fmt.Errorf("query body: %w", err)
	}
	if chproto.FeatureParameters.In(ver) {
		for {
			var p chproto.Parameter
			if err := p.Decode(r); err != nil {
				return q, fmt.Errorf("parameter: %w", err)
			}
			if p.Key == "" {
				break
			}
			q.Parameters = append(q.Parameters, p)
		}
	}
	return q, nil
}

// skipClientInfo reads the client info (ClientInfo::write); the endpoint
// uses none of it.
func skipClientInfo(r *chproto.Reader, ver int) error {
	kind, err := r.UInt8()
	if err != nil {
		return fmt.Errorf("query kind: %w", err)
	}
	if kind == 0 { // NO_QUERY: nothing follows
		return nil
	}
	strs := func(n int) error {
		for range n {
			if _, err := r.Str(); err != nil {
				return err
			}
		}
		return nil
	}
	ints := func(n int) error {
		for range n {
			if _, err := r.UVarInt(); err != nil {
				return err
			}
		}
		return nil
	}
	if err := strs(3); err != nil { // initial user, query id, address
		return fmt.Errorf("initial query: %w", err)
	}
	if chproto.FeatureQueryStartTime.In(ver) {
		if _, err := r.Int64(); err != nil {
			return fmt.Errorf("query start time: %w", err)
		}
	}
	iface, err := r.UInt8()
	if err != nil {
		return fmt.Errorf("interface: %w", err)
	}
	switch iface {
	case interfaceTCP:
		if err := strs(3); err != nil { // os user, hostname, client name
			return fmt.Errorf("client: %w", err)
		}
		if err := ints(3); err != nil { // major, minor, protocol revision
			return fmt.Errorf("client version: %w", err)
		}
	case interfaceHTTP:
		if _, err := r.UInt8(); err != nil { // method
			return fmt.Errorf("http method: %w", err)
		}
		n := 1 // user agent
		if chproto.FeatureXForwardedForInClientInfo.In(ver) {
			n++
		}
		if chproto.FeatureRefererInClientInfo.In(ver) {
			n++
		}
		if err := strs(n); err != nil {
			return fmt.Errorf("http client: %w", err)
		}
	}
	if chproto.FeatureQuotaKeyInClientInfo.In(ver) {
		if err := strs(1); err != nil {
			return fmt.Errorf("quota key: %w", err)
		}
	}
	if chproto.FeatureDistributedDepth.In(ver) {
		if err := ints(1); err != nil {
			return fmt.Errorf("distributed depth: %w", err)
		}
	}
	if chproto.FeatureVersionPatch.In(ver) && iface == interfaceTCP {
		if err := ints(1); err != nil {
			return fmt.Errorf("patch version: %w", err)
		}
	}
	if chproto.FeatureOpenTelemetry.In(ver) {
		has, err := r.Bool()
		if err != nil {
			return fmt.Errorf("trace context: %w", err)
		}
		if has {
			if _, err := r.ReadRaw(16 + 8); err != nil { // trace id, span id
				return fmt.Errorf("trace context: %w", err)
			}
			if err := strs(1); err != nil { // trace state
				return fmt.Errorf("trace state: %w", err)
			}
			if _, err := r.Byte(); err != nil { // flags
				return fmt.Errorf("trace flags: %w", err)
			}
		}
	}
	if chproto.FeatureParallelReplicas.In(ver) {
		if err := ints(3); err != nil {
			return fmt.Errorf("parallel replicas: %w", err)
		}
	}
	return nil
}
