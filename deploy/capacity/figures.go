// Package capacity sizes a statustrace deployment from figures the
// benchmarks of this tree measured: it reads their saved output (BENCH
// lines in .cache/bench/*.txt), the shipped collector settings
// (collector/config.yaml) and a transition rate, and prints storage, CPU,
// collectors and shards, and the insert queries and new parts per second
// per table against ClickHouse's guidance. cmd/capacity is its command
// (make capacity RATE=5000 DAYS=3).
package capacity

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Figure is one measured value and where it comes from.
type Figure struct {
	Value  float64
	Source string // file:line of its BENCH line
}

// Figures are measured values keyed "<bench name>.<key>" (e.g.
// "exporter_figures.status_bytes_per_transition"). A later line overrides
// an earlier one.
type Figures map[string]Figure

// Parse reads the BENCH lines of one benchmark output ("BENCH <name>
// key=value ...", possibly after the benchmark's name); other lines and
// non-numeric values are skipped.
func Parse(r io.Reader, file string, into Figures) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		// go test prints a benchmark's name and then its output on the same
		// line: the BENCH word need not come first.
		for i, f := range fields {
			if f == "BENCH" {
				fields = fields[i:]
				break
			}
		}
		if len(fields) < 3 || fields[0] != "BENCH" {
			continue
		}
		name := fields[1]
		for _, kv := range fields[2:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			into[name+"."+k] = Figure{Value: x, Source: fmt.Sprintf("%s:%d", file, n)}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	return nil
}

// Load parses every *.txt in dir, in name order.
func Load(dir string) (Figures, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	f := Figures{}
	for _, p := range files {
		fh, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		err = Parse(fh, p, f)
		fh.Close()
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}

// need returns the figures asked for, or an error naming every missing one
// and the benchmark target that measures it.
func (f Figures) need(keys ...string) (map[string]Figure, error) {
	out := map[string]Figure{}
	var missing []string
	for _, k := range keys {
		v, ok := f[k]
		if !ok {
			missing = append(missing, k+" ("+producer(k)+")")
			continue
		}
		out[k] = v
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing measured figures, run the benchmarks first: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// producer names the make target whose output carries a figure.
func producer(key string) string {
	switch {
	case strings.HasPrefix(key, "exporter_"):
		return "make bench-exporter"
	case strings.HasPrefix(key, "host_to_otlp"):
		return "make bench-plugin"
	case strings.Contains(key, "read_rows"):
		return "make bench-queries-local"
	default:
		return "make bench"
	}
}
