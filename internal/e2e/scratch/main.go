// Temporary experiment (not committed).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/statustrace/statustrace/internal/stack"
	"github.com/statustrace/statustrace/plugin/event"
	"github.com/statustrace/statustrace/scheduler/config"
)

func main() {
	ctx := context.Background()
	root, _ := stack.ModuleRoot()
	bins, err := stack.BinariesIn("/tmp/stbin")
	if err != nil {
		panic(err)
	}
	bins.Statustrace = ""
	dsn := os.Getenv("CLICKHOUSE_DSN")
	if err := stack.RecreateDatabase(ctx, dsn, "exp1"); err != nil {
		panic(err)
	}
	r := 0
	s, err := stack.Start(ctx, stack.Options{Root: root, Bin: bins, WorkDir: "/tmp/exp1", DSN: dsn, Database: "exp1",
		Scheduler: config.Config{Functions: []config.Function{{Name: "x", Endpoint: stack.DemoBase + "/succeed", Retries: &r}}}})
	if err != nil {
		panic(err)
	}
	defer s.Stop()
	defer fmt.Println("stopping")
	syn, err := stack.StartSynthetic(ctx, stack.SyntheticOptions{PluginPath: bins.Plugin, OTLPGRPC: s.OTLPGRPC, Node: "syn", Rate: 4500,
		Keys: event.Keys{Tenant: "bench", Namespace: "bench", Function: "synthetic", Qualifier: "$LATEST"}})
	if err != nil {
		panic(err)
	}
	time.Sleep(30 * time.Second)
	fmt.Println(syn.Stop(ctx), syn.Reported())
	time.Sleep(3 * time.Second)
}
