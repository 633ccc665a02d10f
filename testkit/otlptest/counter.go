package otlptest

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Counter is an OTLP/gRPC trace endpoint for throughput benchmarks: it walks
// each request's protobuf wire format just far enough to count the spans
// (ExportTraceServiceRequest.resource_spans → scope_spans → spans) and
// answers OK, so that the receiving side costs next to nothing and the
// benchmark measures the sending pipeline. Malformed requests are refused.
type Counter struct {
	GRPCAddr string
	spans    atomic.Int64
	requests atomic.Int64
}

// StartCounter serves until the test ends.
func StartCounter(tb testing.TB) *Counter {
	tb.Helper()
	c := &Counter{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	s := grpc.NewServer(grpc.ForceServerCodecV2(countingCodec{c}), grpc.MaxRecvMsgSize(64<<20))
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Export",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var n int64
				if err := dec(&n); err != nil {
					return nil, err
				}
				c.spans.Add(n)
				c.requests.Add(1)
				return []byte{}, nil // an empty ExportTraceServiceResponse
			},
		}},
	}, nil)
	go func() { _ = s.Serve(l) }()
	tb.Cleanup(s.Stop)
	c.GRPCAddr = l.Addr().String()
	return c
}

// Spans is the number of spans received.
func (c *Counter) Spans() int64 { return c.spans.Load() }

type countingCodec struct{ c *Counter }

func (countingCodec) Name() string { return "proto" }

func (countingCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, errors.New("otlptest: counter marshals raw bytes only")
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (countingCodec) Unmarshal(data mem.BufferSlice, v any) error {
	n, ok := v.(*int64)
	if !ok {
		return errors.New("otlptest: counter unmarshals into *int64 only")
	}
	buf := data.Materialize()
	var err error
	*n, err = countSpans(buf)
	return err
}

// countSpans counts the spans of an ExportTraceServiceRequest.
func countSpans(b []byte) (int64, error) {
	var n int64
	err := eachField(b, 1, func(rs []byte) error { // resource_spans
		return eachField(rs, 2, func(ss []byte) error { // scope_spans
			return eachField(ss, 2, func([]byte) error { // spans
				n++
				return nil
			})
		})
	})
	return n, err
}

// eachField calls f with the bytes of every length-delimited field num of b
// and skips every other field.
func eachField(b []byte, num protowire.Number, f func([]byte) error) error {
	for len(b) > 0 {
		fn, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if fn == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return protowire.ParseError(l)
			}
			if err := f(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(fn, typ, b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
	}
	return nil
}
