# Make targets of the plugin (plugin/, cmd/statustrace-plugin). The top-level
# Makefile includes this file:  include plugin/plugin.mk
# Run from the repository root.

# protoc-gen-go is versioned with google.golang.org/protobuf: keep it equal to go.mod's.
PROTOC_GEN_GO_VERSION ?= v1.36.12
# protoc-gen-go-grpc has its own versions; v1.6.x generates code for grpc >= 1.64 (go.mod: 1.85).
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
PLUGIN_GOBIN := $(shell go env GOPATH)/bin

.PHONY: proto proto-tools bench-plugin test-plugin

# protoc itself comes from the system: apt-get install -y protobuf-compiler
proto-tools:
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get update && apt-get install -y protobuf-compiler"; exit 1; }
	go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# Regenerates plugin/proto/*.pb.go (committed; tests do not need protoc).
proto: proto-tools
	PATH="$(PLUGIN_GOBIN):$$PATH" protoc -I plugin/proto \
		--go_out=plugin/proto --go_opt=paths=source_relative \
		--go-grpc_out=plugin/proto --go-grpc_opt=paths=source_relative \
		plugin/proto/statustrace.proto

test-plugin:
	go test -count=1 -timeout 10m ./plugin/... ./cmd/statustrace-plugin/

# Prints "BENCH report_vs_unary_rpc ..." and "BENCH host_to_otlp transitions_per_s=...".
# The output is kept in $(BENCH_OUT)/plugin.txt for `make capacity`.
BENCH_OUT ?= .cache/bench
bench-plugin:
	@mkdir -p $(BENCH_OUT); set -o pipefail; { \
	go test -run '^$$' -bench '^BenchmarkReport$$' -count=1 -timeout 10m ./plugin/host/ && \
	go test -run '^$$' -bench '^BenchmarkHostToOTLP$$' -benchtime 300000x -count=1 -timeout 10m ./plugin/host/ && \
	go test -run '^$$' -bench . -benchtime 102400x -count=1 -timeout 10m ./plugin/spans/; } 2>&1 | tee $(BENCH_OUT)/plugin.txt
