// Package plugin is the contract between a scheduler (the go-plugin host) and
// the statustrace plugin process: the handshake, the protocol versions, the Go
// interfaces of both sides and their gRPC client and server.
//
// The shape follows go-plugin's gRPC example: the plugin implements Sink and
// serves it with Serve; the host dispenses a Client (see plugin/host, which
// wraps all of this behind a non-blocking Reporter).
package plugin

import (
	"context"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/statustrace/statustrace/event"
	pb "github.com/statustrace/statustrace/plugin/proto"
)

// Name is the key under which the plugin is dispensed.
const Name = "statustrace"

// ProtocolVersion is the newest protocol this package speaks. Version 1: the
// StatusTrace service of plugin/proto (package statustrace.plugin.v1).
const ProtocolVersion = 1

// Handshake makes sure that the binary launched is a statustrace plugin and
// not an arbitrary program; it is not a security measure.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion, // ignored when VersionedPlugins is set
	MagicCookieKey:   "STATUSTRACE_PLUGIN",
	MagicCookieValue: "c5a3f1f0-statustrace-transitions-to-spans",
}

// VersionedPlugins is what the host offers: protocol version → plugin set.
// A later incompatible protocol gets a new key here, and both versions are
// served while schedulers migrate. Serve serves the same map.
func VersionedPlugins() map[int]goplugin.PluginSet { return versionedPlugins(nil) }

// versionedPlugins is the one version map; impl is nil on the host (it
// dispenses clients) and the Sink in the plugin process.
func versionedPlugins(impl Sink) map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		1: {Name: &GRPCPlugin{Impl: impl}},
	}
}

// Sink is implemented by the plugin process (see plugin/spans).
type Sink interface {
	// Configure sets up the span pipeline from the host's PluginConfig.
	Configure(ctx context.Context, config map[string]string) error
	// Submit hands one batch over. It is called from a single goroutine in
	// stream order, may block to apply back-pressure, and must call done
	// exactly once: nil once the batch is the Sink's responsibility (kept
	// durably until exported, or dropped and counted in Stats), an error if
	// it is not (the host re-sends it). rejected counts transitions dropped
	// as invalid. batch is only valid during the call.
	Submit(ctx context.Context, batch []event.Transition, done func(rejected int, err error))
	// Validate checks one transition without exporting it.
	Validate(t *event.Transition) error
	// Stats returns the process's counters.
	Stats() Stats
	// Shutdown sends what it can within ctx and stops the pipeline; what it
	// could not send stays spooled for the next process.
	Shutdown(ctx context.Context) error
}

// Stats are the plugin process's counters since it started, in transitions
// unless named otherwise (the fields of pb.PluginStats).
type Stats struct {
	Spooled          uint64 // written to the spool and acknowledged
	Exported         uint64 // accepted by the OTLP receiver
	Replayed         uint64 // read back from a spool an earlier process left
	DroppedSpoolFull uint64 // acknowledged but dropped: the spool was full
	DroppedCorrupt   uint64 // lost to a corrupt or torn spool record
	DroppedRefused   uint64 // refused by the receiver as malformed, never retried
	RefusedSpans     uint64 // spans the receiver refused in a partial success
	ExportFailures   uint64 // failed export attempts (requests), retried
	SpoolBytes       uint64 // size of the spool on disk now (bytes)
}

// Client is what the host gets from go-plugin.
type Client interface {
	Configure(ctx context.Context, config map[string]string) error
	// OpenStream opens the batch stream; ctx bounds its whole life.
	OpenStream(ctx context.Context) (Stream, error)
	// ReportOne sends one transition in one unary call (benchmark baseline).
	ReportOne(ctx context.Context, t *event.Transition) error
	// Shutdown returns the plugin's final counters.
	Shutdown(ctx context.Context) (Stats, error)
}

// Stream is the host's end of the batch stream. Send and Recv may be used
// from two different goroutines, but each from one goroutine at a time.
type Stream interface {
	Send(batch *pb.TransitionBatch) error
	Recv() (*pb.BatchAck, error)
	CloseSend() error
}
