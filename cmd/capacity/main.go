// Command capacity sizes a statustrace deployment from the figures the
// benchmarks of this tree measured (deploy/capacity):
//
//	make bench                           # writes .cache/bench/*.txt
//	make capacity RATE=5000 DAYS=3       # or: go run ./cmd/capacity -rate 5000 -days 3
//	go run ./cmd/capacity -table 1000,10000,100000   # the deploy/README.md table
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/statustrace/statustrace/deploy/capacity"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "capacity:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("capacity", flag.ContinueOnError)
	var in capacity.Input
	fs.Float64Var(&in.Rate, "rate", 5000, "transitions per second")
	fs.Float64Var(&in.Days, "days", 3, "retention in days")
	fs.IntVar(&in.Replicas, "replicas", 2, "replicas per shard")
	fs.IntVar(&in.Collectors, "collectors", 0, "second-tier collectors (0: as the CPU needs, at least 2)")
	fs.IntVar(&in.Shards, "shards", 0, "shards (0: as storage and inserts need)")
	fs.Float64Var(&in.NodeCores, "node-cores", 2, "ClickHouse cores per node")
	fs.Float64Var(&in.NodeDisk, "node-disk-gib", 200, "ClickHouse data volume per node, GiB")
	fs.Float64Var(&in.PodCores, "pod-cores", 1, "CPU per collector pod")
	fs.DurationVar(&in.Freshness, "freshness", time.Second, "status freshness target (p99, BenchmarkFreshness's)")
	bench := fs.String("bench", ".cache/bench", "folder of the saved benchmark output (make bench)")
	config := fs.String("config", "deploy/kubernetes/collector/collector.yaml", "collector configuration whose exporter settings are modelled")
	table := fs.String("table", "", "comma-separated rates: print the summary table (Markdown) instead")
	if err := fs.Parse(args); err != nil {
		return err
	}
	figs, err := capacity.Load(*bench)
	if err != nil {
		return err
	}
	set, err := capacity.ReadSettings(*config)
	if err != nil {
		return err
	}
	if *table != "" {
		var rates []float64
		for _, s := range strings.Split(*table, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return fmt.Errorf("-table %q: %w", *table, err)
			}
			rates = append(rates, r)
		}
		return capacity.WriteTable(os.Stdout, figs, set, in, rates)
	}
	rep, err := capacity.Model(figs, set, in)
	if err != nil {
		return err
	}
	fmt.Printf("figures: %s; settings: %s\n", *bench, set.Source)
	return rep.Write(os.Stdout)
}
