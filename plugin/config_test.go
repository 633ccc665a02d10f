package plugin

import (
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A typed Config rendered by the host is read back whole by the plugin:
// every field has its key, both ways.
func TestConfigMapRoundTrip(t *testing.T) {
	t.Parallel()
	insecure := true
	c := Config{
		Protocol: ProtocolHTTP, Endpoint: "https://collector:4318/v1/traces", Headers: map[string]string{"authorization": "Bearer x", "x-tenant": "a"},
		Insecure: &insecure, Compression: "gzip", Timeout: 7 * time.Second, CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem",
		ServiceName: "svc", ResourceAttrs: map[string]string{"deployment.environment": "prod"}, ExportWorkers: 3,
		MaxEventStates: 1234, SpoolDir: "/spool", SpoolMaxBytes: 5 << 20, DrainTimeout: 9 * time.Second,
	}
	// Every field set: a field added to Config without a key fails here.
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("test leaves Config.%s unset", v.Type().Field(i).Name)
		}
	}
	m := c.Map()
	if len(m) != v.NumField() {
		t.Errorf("Map renders %d keys for %d fields: %v", len(m), v.NumField(), slices.Sorted(maps.Keys(m)))
	}
	got, err := ParseConfig(m)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip\n got  %+v\n want %+v", got, c)
	}
	// Unset fields are left out, so the plugin's defaults apply.
	def, err := ParseConfig(Config{Endpoint: "x:1"}.Map())
	if err != nil || def.ExportWorkers != 2 || def.SpoolDir != DefaultSpoolDir {
		t.Errorf("defaults: %+v, %v", def, err)
	}
}

// Serve serves the map the host offers, every version with the Sink.
func TestServeUsesVersionedPlugins(t *testing.T) {
	t.Parallel()
	var sink Sink = nopSink{}
	sc := serveConfig(sink, hclog.NewNullLogger())
	host := VersionedPlugins()
	if !slices.Equal(slices.Sorted(maps.Keys(sc.VersionedPlugins)), slices.Sorted(maps.Keys(host))) {
		t.Fatalf("served versions %v, host offers %v", slices.Sorted(maps.Keys(sc.VersionedPlugins)), slices.Sorted(maps.Keys(host)))
	}
	for ver, set := range sc.VersionedPlugins {
		if !slices.Equal(slices.Sorted(maps.Keys(set)), slices.Sorted(maps.Keys(host[ver]))) {
			t.Errorf("version %d: served plugins %v, host %v", ver, slices.Sorted(maps.Keys(set)), slices.Sorted(maps.Keys(host[ver])))
		}
		for name, p := range set {
			if g, ok := p.(*GRPCPlugin); !ok || g.Impl != sink {
				t.Errorf("version %d plugin %s does not serve the Sink: %#v", ver, name, p)
			}
		}
	}
}

type nopSink struct{ Sink }
