package capacity

import (
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// Batching is how one collector's exporter batches and inserts.
type Batching struct {
	Flush       time.Duration // batch flush_timeout
	MinSize     int           // flush as soon as this many items wait
	MaxSize     int           // largest insert
	Consumers   int           // concurrent inserts (does not change the batch count)
	AsyncInsert bool          // ClickHouse async inserts (wait_for_async_insert = 1)
	// AsyncFlush is the server's async insert buffer flush
	// (async_insert_busy_timeout_max_ms) when AsyncInsert is on; 0 = the
	// server's default, DefaultAsyncFlush.
	AsyncFlush time.Duration
}

// DefaultAsyncFlush is ClickHouse's default async_insert_busy_timeout_max_ms.
const DefaultAsyncFlush = 200 * time.Millisecond

// Settings are the collector's two ClickHouse exporters.
type Settings struct {
	Source string   // the file they were read from
	Status Batching // statustrace exporter: transitions (+ events, transitions_minute views)
	Traces Batching // clickhouse (contrib) exporter: otel_traces (+ its trace_id_ts view)
}

type exporterYAML struct {
	AsyncInsert      *bool             `yaml:"async_insert"`
	ConnectionParams map[string]string `yaml:"connection_params"`
	SendingQueue     struct {
		NumConsumers int `yaml:"num_consumers"`
		Batch        struct {
			FlushTimeout string `yaml:"flush_timeout"`
			MinSize      int    `yaml:"min_size"`
			MaxSize      int    `yaml:"max_size"`
		} `yaml:"batch"`
	} `yaml:"sending_queue"`
}

// ReadSettings reads the statustrace and clickhouse exporters' batching from
// a collector configuration (collector/config.yaml, the Kubernetes
// collector.yaml).
func ReadSettings(path string) (Settings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Settings{}, err
	}
	var doc struct {
		Exporters map[string]exporterYAML `yaml:"exporters"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return Settings{}, fmt.Errorf("%s: %w", path, err)
	}
	s := Settings{Source: path}
	// The contrib exporter inserts asynchronously unless told otherwise
	// (its async_insert defaults to true); this one synchronously.
	for name, dst := range map[string]*Batching{"statustrace": &s.Status, "clickhouse": &s.Traces} {
		e, ok := doc.Exporters[name]
		if !ok {
			return Settings{}, fmt.Errorf("%s: no %s exporter", path, name)
		}
		if *dst, err = e.batching(name == "clickhouse"); err != nil {
			return Settings{}, fmt.Errorf("%s: exporter %s: %w", path, name, err)
		}
	}
	return s, nil
}

func (e exporterYAML) batching(asyncDefault bool) (Batching, error) {
	q := e.SendingQueue
	d, err := time.ParseDuration(q.Batch.FlushTimeout)
	if err != nil || d <= 0 {
		return Batching{}, fmt.Errorf("sending_queue.batch.flush_timeout %q: want a positive duration", q.Batch.FlushTimeout)
	}
	b := Batching{Flush: d, MinSize: q.Batch.MinSize, MaxSize: q.Batch.MaxSize, Consumers: max(q.NumConsumers, 1), AsyncInsert: asyncDefault}
	if e.AsyncInsert != nil {
		b.AsyncInsert = *e.AsyncInsert
	}
	if v, ok := e.ConnectionParams["async_insert"]; ok {
		b.AsyncInsert = v == "1" || v == "true"
	}
	if v, ok := e.ConnectionParams["async_insert_busy_timeout_max_ms"]; ok {
		var ms int
		if _, err := fmt.Sscan(v, &ms); err != nil || ms <= 0 {
			return Batching{}, fmt.Errorf("connection_params.async_insert_busy_timeout_max_ms %q: want milliseconds", v)
		}
		b.AsyncFlush = time.Duration(ms) * time.Millisecond
	}
	return b, nil
}
