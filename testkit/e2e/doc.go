// Package e2e holds the end-to-end test and the freshness benchmark of the
// whole pipeline as an operator runs it: the real scheduler, plugin and
// collector binaries (internal/stack) against a real ClickHouse engine
// (testkit/chtest), checked through the query side.
//
//	go test -count=1 ./testkit/e2e/                                         # the end-to-end test
//	go test -run '^$' -bench Freshness -benchtime 1x -timeout 20m ./testkit/e2e/   # the freshness benchmark
package e2e
