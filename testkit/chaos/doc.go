// Package chaos holds the chaos test of the whole pipeline (issue 12),
// independent of testkit/e2e: the built binaries as an operator runs them
// (internal/stack: collector on its shipped config and persistent queue,
// the plugin through go-plugin, the reference scheduler, statustrace
// serve) under a steady workload that records what it did, while faults
// are injected one after the other; afterwards every event is compared
// with what the workload expects, through the API.
//
//	go test -count=1 -v ./testkit/chaos/     # skipped with -short
package chaos
