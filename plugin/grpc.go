package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/statustrace/statustrace/event"
	pb "github.com/statustrace/statustrace/plugin/proto"
)

// MaxMessageBytes bounds one gRPC message (one batch) in both directions.
// The host cuts batches well below it.
const MaxMessageBytes = 16 << 20

// GRPCPlugin is the go-plugin glue: on the plugin side it serves Impl, on
// the host side it hands out a *GRPCClient.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Sink // plugin side only
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the StatusTrace service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("statustrace plugin: no Sink to serve")
	}
	pb.RegisterStatusTraceServer(s, &GRPCServer{Impl: p.Impl})
	return nil
}

// GRPCClient returns the host's end.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &GRPCClient{client: pb.NewStatusTraceClient(c)}, nil
}

// Serve runs the plugin process's side until the host stops it. It returns
// after the gRPC server stopped; the caller then shuts impl down. If the
// host process dies without stopping the plugin (kill -9), the plugin
// notices that it was re-parented and exits instead of lingering.
func Serve(impl Sink, logger hclog.Logger) {
	go watchParent(logger, os.Getppid(), time.Second)
	goplugin.Serve(serveConfig(impl, logger))
}

// serveConfig is what Serve serves: the host's version map with impl.
func serveConfig(impl Sink, logger hclog.Logger) *goplugin.ServeConfig {
	return &goplugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: versionedPlugins(impl),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes))
			return grpc.NewServer(opts...)
		},
		Logger: logger,
	}
}

func watchParent(logger hclog.Logger, ppid int, every time.Duration) {
	for range time.Tick(every) {
		if os.Getppid() != ppid {
			logger.Error("host process is gone; exiting", "host_pid", ppid)
			os.Exit(2)
		}
	}
}

// GRPCClient is the host's end of the StatusTrace service.
type GRPCClient struct {
	client pb.StatusTraceClient
}

var _ Client = (*GRPCClient)(nil)

func (c *GRPCClient) Configure(ctx context.Context, config map[string]string) error {
	if _, err := c.client.Configure(ctx, &pb.ConfigureRequest{Config: config}); err != nil {
		return fmt.Errorf("configure plugin: %w", err)
	}
	return nil
}

func (c *GRPCClient) OpenStream(ctx context.Context) (Stream, error) {
	s, err := c.client.Stream(ctx, grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))
	if err != nil {
		return nil, fmt.Errorf("open transition stream: %w", err)
	}
	return s, nil
}

func (c *GRPCClient) ReportOne(ctx context.Context, t *event.Transition) error {
	var m pb.Transition
	ToProto(&m, t)
	if _, err := c.client.ReportOne(ctx, &m); err != nil {
		return fmt.Errorf("report transition: %w", err)
	}
	return nil
}

func (c *GRPCClient) Shutdown(ctx context.Context) (Stats, error) {
	resp, err := c.client.Shutdown(ctx, &pb.ShutdownRequest{})
	if err != nil {
		return Stats{}, fmt.Errorf("shut plugin down: %w", err)
	}
	return StatsFromProto(resp.GetStats()), nil
}

func statsToProto(s Stats) *pb.PluginStats {
	return &pb.PluginStats{Spooled: s.Spooled, Exported: s.Exported, Replayed: s.Replayed,
		DroppedSpoolFull: s.DroppedSpoolFull, DroppedCorrupt: s.DroppedCorrupt, DroppedRefused: s.DroppedRefused,
		RefusedSpans: s.RefusedSpans, ExportFailures: s.ExportFailures, SpoolBytes: s.SpoolBytes}
}

// StatsFromProto reads the counters of an ack (zero when absent).
func StatsFromProto(p *pb.PluginStats) Stats {
	return Stats{Spooled: p.GetSpooled(), Exported: p.GetExported(), Replayed: p.GetReplayed(),
		DroppedSpoolFull: p.GetDroppedSpoolFull(), DroppedCorrupt: p.GetDroppedCorrupt(), DroppedRefused: p.GetDroppedRefused(),
		RefusedSpans: p.GetRefusedSpans(), ExportFailures: p.GetExportFailures(), SpoolBytes: p.GetSpoolBytes()}
}

// GRPCServer adapts a Sink to the StatusTrace service.
type GRPCServer struct {
	pb.UnimplementedStatusTraceServer
	Impl Sink
}

func (s *GRPCServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	if err := s.Impl.Configure(ctx, req.GetConfig()); err != nil {
		return nil, err
	}
	return &pb.ConfigureResponse{}, nil
}

func (s *GRPCServer) ReportOne(_ context.Context, m *pb.Transition) (*pb.ReportOneResponse, error) {
	var t event.Transition
	FromProto(&t, m)
	if err := s.Impl.Validate(&t); err != nil {
		return nil, err
	}
	return &pb.ReportOneResponse{}, nil
}

func (s *GRPCServer) Shutdown(ctx context.Context, _ *pb.ShutdownRequest) (*pb.ShutdownResponse, error) {
	if err := s.Impl.Shutdown(ctx); err != nil {
		return nil, err
	}
	return &pb.ShutdownResponse{Stats: statsToProto(s.Impl.Stats())}, nil
}

// statsEvery is how often Stream sends a stats-only ack while the counters
// change without batches (exports from the spool, a replay).
const statsEvery = time.Second

// Stream receives batches in order and hands each to the Sink; acks go back
// from one writer goroutine as the Sink finishes batches, possibly out of
// order. When the host closes its side, Stream waits for the batches in
// flight so that their acks are still delivered.
func (s *GRPCServer) Stream(stream pb.StatusTrace_StreamServer) error {
	ctx := stream.Context()
	acks := make(chan *pb.BatchAck, 64)
	writerDone := make(chan error, 1)
	go func() {
		var err error
		var last Stats
		tick := time.NewTicker(statsEvery)
		defer tick.Stop()
		for {
			var a *pb.BatchAck
			select {
			case ack, ok := <-acks:
				if !ok {
					writerDone <- err
					return
				}
				a = ack
			case <-tick.C:
				if st := s.Impl.Stats(); st != last {
					a = &pb.BatchAck{Ok: true}
				}
			}
			if a == nil || err != nil {
				continue // after a send error keep draining so that done callbacks never block
			}
			last = s.Impl.Stats()
			a.Stats = statsToProto(last)
			err = stream.Send(a)
		}
	}()

	var inflight sync.WaitGroup
	var batch []event.Transition
	var recvErr error
	for {
		m, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				recvErr = err
			}
			break
		}
		batch = batch[:0]
		for _, p := range m.GetTransitions() {
			var t event.Transition
			FromProto(&t, p)
			batch = append(batch, t)
		}
		id := m.GetBatchId()
		inflight.Add(1)
		s.Impl.Submit(ctx, batch, func(rejected int, err error) {
			a := &pb.BatchAck{BatchId: id, Ok: err == nil, Rejected: uint32(rejected)}
			if err != nil {
				a.Error = err.Error()
			}
			acks <- a
			inflight.Done()
		})
	}
	inflight.Wait()
	close(acks)
	if err := <-writerDone; err != nil && recvErr == nil {
		recvErr = err
	}
	return recvErr
}
