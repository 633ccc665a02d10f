package deploy_test

import (
	"encoding/xml"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/statustrace/statustrace/exporter/migrate"
)

type clusterXML struct {
	RemoteServers struct {
		Clusters []struct {
			XMLName xml.Name
			Shards  []struct {
				InternalReplication bool `xml:"internal_replication"`
				Replicas            []struct {
					Host string `xml:"host"`
					Port int    `xml:"port"`
				} `xml:"replica"`
			} `xml:"shard"`
		} `xml:",any"`
	} `xml:"remote_servers"`
	Macros struct {
		Cluster string `xml:"cluster"`
		Shard   struct {
			FromEnv string `xml:"from_env,attr"`
		} `xml:"shard"`
		Replica struct {
			FromEnv string `xml:"from_env,attr"`
		} `xml:"replica"`
	} `xml:"macros"`
	Zookeeper struct {
		Nodes []struct {
			Host string `xml:"host"`
			Port int    `xml:"port"`
		} `xml:"node"`
	} `xml:"zookeeper"`
	DistributedDDL struct {
		Path string `xml:"path"`
	} `xml:"distributed_ddl"`
}

type keeperXML struct {
	Server struct {
		TCPPort  int `xml:"tcp_port"`
		ServerID struct {
			FromEnv string `xml:"from_env,attr"`
		} `xml:"server_id"`
		Raft struct {
			Servers []struct {
				ID       int    `xml:"id"`
				Hostname string `xml:"hostname"`
				Port     int    `xml:"port"`
			} `xml:"server"`
		} `xml:"raft_configuration"`
	} `xml:"keeper_server"`
}

// collectorClusterNames are the cluster_name settings of the second-tier
// collector's two exporters.
func collectorClusterNames(t *testing.T) (statustrace, contrib, contribTable string) {
	t.Helper()
	var cfg struct {
		Exporters struct {
			Statustrace struct {
				ClusterName string `yaml:"cluster_name"`
			} `yaml:"statustrace"`
			Clickhouse struct {
				ClusterName string `yaml:"cluster_name"`
				Table       string `yaml:"traces_table_name"`
			} `yaml:"clickhouse"`
		} `yaml:"exporters"`
	}
	readYAML(t, filepath.Join(k8sDir, "collector", "collector.yaml"), &cfg)
	return cfg.Exporters.Statustrace.ClusterName, cfg.Exporters.Clickhouse.ClusterName, cfg.Exporters.Clickhouse.Table
}

// TestClickHouseCluster: the cluster configuration is the one the
// exporter's cluster mode targets, and it describes the pods the manifests
// run: every host is a pod of a StatefulSet behind its headless Service,
// each shard's replicas carry that shard's macro, the Keeper nodes are the
// Keeper pods with matching raft ids.
func TestClickHouseCluster(t *testing.T) {
	var c clusterXML
	if err := xml.Unmarshal(read(t, filepath.Join("clickhouse", "config.d", "cluster.xml")), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.RemoteServers.Clusters) != 1 {
		t.Fatalf("%d clusters in remote_servers, want 1", len(c.RemoteServers.Clusters))
	}
	cl := c.RemoteServers.Clusters[0]
	name := cl.XMLName.Local
	st, contrib, contribTable := collectorClusterNames(t)
	if st != name || contrib != name || c.Macros.Cluster != name {
		t.Errorf("cluster %q, but statustrace exporter cluster_name %q, contrib %q, macro %q", name, st, contrib, c.Macros.Cluster)
	}
	opts := migrate.Options{Database: "statustrace", Cluster: name}
	rendered, err := migrate.Render(opts)
	if err != nil {
		t.Fatalf("the exporter's migrations cannot render for cluster %q: %v", name, err)
	}
	var ddl strings.Builder
	for _, r := range rendered {
		ddl.WriteString(strings.Join(r.SQL, "\n"))
	}
	for _, want := range []string{"ON CLUSTER `" + name + "`", "{shard}", "{replica}", "Distributed('" + name + "'"} {
		if !strings.Contains(ddl.String(), want) {
			t.Errorf("cluster DDL lacks %q: the macros/cluster here would not match it", want)
		}
	}
	if len(cl.Shards) != 2 {
		t.Errorf("%d shards, want 2", len(cl.Shards))
	}
	if c.Macros.Shard.FromEnv == "" || c.Macros.Replica.FromEnv == "" || c.DistributedDDL.Path == "" {
		t.Errorf("macros shard/replica must come from the environment and distributed_ddl be set: %+v", c.Macros)
	}

	m := loadManifests(t)
	podOf := func(host string) (sts string, ordinal int, err error) {
		pod, svc, _ := strings.Cut(host, ".")
		i := strings.LastIndex(pod, "-")
		ordinal, err = strconv.Atoi(pod[i+1:])
		if err != nil {
			return "", 0, fmt.Errorf("%s is not a StatefulSet pod name", host)
		}
		s, ok := m.statefulSets[pod[:i]]
		if !ok {
			return "", 0, fmt.Errorf("%s: no StatefulSet %s", host, pod[:i])
		}
		if s.Spec.ServiceName != svc || m.services[svc] == nil || m.services[svc].Spec.ClusterIP != corev1.ClusterIPNone {
			return "", 0, fmt.Errorf("%s: %s is not the headless Service of %s", host, svc, pod[:i])
		}
		if ordinal >= int(*s.Spec.Replicas) {
			return "", 0, fmt.Errorf("%s: %s has %d replicas", host, pod[:i], *s.Spec.Replicas)
		}
		return pod[:i], ordinal, nil
	}
	seen := 0
	for i, sh := range cl.Shards {
		if !sh.InternalReplication || len(sh.Replicas) != 2 {
			t.Errorf("shard %d: want 2 replicas with internal_replication", i)
		}
		for _, r := range sh.Replicas {
			sts, _, err := podOf(r.Host)
			if err != nil {
				t.Error(err)
				continue
			}
			seen++
			ch := m.container(t, "StatefulSet/"+sts)
			env := envOf(ch)
			if env[c.Macros.Shard.FromEnv] != strconv.Itoa(i) {
				t.Errorf("%s is in shard %d but its %s is %q", r.Host, i, c.Macros.Shard.FromEnv, env[c.Macros.Shard.FromEnv])
			}
			if env[c.Macros.Replica.FromEnv] == "" {
				t.Errorf("%s: %s is not set", sts, c.Macros.Replica.FromEnv)
			}
			if !hasPort(m.pods()["StatefulSet/"+sts].Spec, strconv.Itoa(r.Port)) {
				t.Errorf("%s: port %d not served", r.Host, r.Port)
			}
			for _, env := range fromEnv(t, filepath.Join("clickhouse", "users.d", "statustrace.xml")) {
				if _, ok := envOf(ch)[env]; !ok {
					t.Errorf("%s: users.d reads $%s, which the pod does not set", sts, env)
				}
			}
		}
	}
	total := 0
	for n, s := range m.statefulSets {
		if strings.HasPrefix(n, "clickhouse-shard") {
			total += int(*s.Spec.Replicas)
		}
	}
	if seen != total {
		t.Errorf("remote_servers lists %d replicas, the StatefulSets run %d", seen, total)
	}

	var k keeperXML
	if err := xml.Unmarshal(read(t, filepath.Join("clickhouse", "keeper", "keeper.xml")), &k); err != nil {
		t.Fatal(err)
	}
	var zk, raft []string
	for _, n := range c.Zookeeper.Nodes {
		zk = append(zk, n.Host)
		if n.Port != k.Server.TCPPort {
			t.Errorf("zookeeper node %s port %d, keeper listens on %d", n.Host, n.Port, k.Server.TCPPort)
		}
	}
	for i, s := range k.Server.Raft.Servers {
		raft = append(raft, s.Hostname)
		sts, ordinal, err := podOf(s.Hostname)
		if err != nil {
			t.Error(err)
			continue
		}
		if s.ID != ordinal+1 || s.ID != i+1 {
			t.Errorf("raft server %s has id %d, want ordinal+1 = %d (the pod's KEEPER_ID)", s.Hostname, s.ID, ordinal+1)
		}
		if c := m.container(t, "StatefulSet/"+sts); !strings.Contains(strings.Join(c.Command, " "), k.Server.ServerID.FromEnv) {
			t.Errorf("%s does not set %s", sts, k.Server.ServerID.FromEnv)
		}
	}
	if !slices.Equal(zk, raft) || len(raft) != 3 {
		t.Errorf("zookeeper nodes %v, keeper raft servers %v: want the same 3", zk, raft)
	}

	// The cluster-mode init creates Distributed otel_traces over the table
	// the contrib exporter writes.
	sql := string(read(t, filepath.Join("clickhouse", "init", "otel_traces_distributed.sql")))
	for _, want := range []string{"ON CLUSTER " + name, "AS statustrace." + contribTable + "\n", "Distributed(" + name + ", statustrace, " + contribTable + ","} {
		if !strings.Contains(sql, want) {
			t.Errorf("init SQL lacks %q", want)
		}
	}
}

// TestGrafanaProvisioning: the data source is the ClickHouse plugin on the
// statustrace database with every setting it reads from the environment
// set by compose and Kubernetes; the dashboard provider reads the folder
// both mount the dashboards into.
func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		Datasources []struct {
			Type     string `yaml:"type"`
			JSONData struct {
				DefaultDatabase string `yaml:"defaultDatabase"`
				Traces          struct {
					DefaultDatabase string `yaml:"defaultDatabase"`
					OtelEnabled     bool   `yaml:"otelEnabled"`
					OtelVersion     string `yaml:"otelVersion"`
				} `yaml:"traces"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	dsFile := filepath.Join("grafana", "provisioning", "datasources", "clickhouse.yaml")
	readYAML(t, dsFile, &ds)
	// The database is the collector's: the same variable, set for both.
	const dbVar = "STATUSTRACE_DATABASE"
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "grafana-clickhouse-datasource" {
		t.Fatalf("data sources %+v: want one grafana-clickhouse-datasource", ds.Datasources)
	}
	jd := ds.Datasources[0].JSONData
	if jd.DefaultDatabase != "$"+dbVar || jd.Traces.DefaultDatabase != "$"+dbVar {
		t.Errorf("data source databases %q, traces %q: want $%s, the collector's", jd.DefaultDatabase, jd.Traces.DefaultDatabase, dbVar)
	}
	// The plugin ignores otelEnabled without otelVersion.
	if jd.Traces.OtelEnabled && jd.Traces.OtelVersion == "" {
		t.Errorf("traces.otelEnabled without traces.otelVersion")
	}
	var vars []string
	for _, m := range regexpEnvRE.FindAllStringSubmatch(string(read(t, dsFile)), -1) {
		vars = append(vars, m[1])
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join("grafana", "provisioning", "dashboards", "statustrace.yaml"), &prov)
	path := prov.Providers[0].Options.Path

	c := loadCompose(t)
	g := c.Services["grafana"]
	for _, v := range vars {
		if _, ok := g.Environment[v]; !ok {
			t.Errorf("compose grafana: the data source reads $%s, which is not set", v)
		}
	}
	if gdb, cdb := g.Environment[dbVar], c.Services["collector"].Environment[dbVar]; gdb == "" || gdb != cdb {
		t.Errorf("compose: grafana reads database %q, the collector writes %q", gdb, cdb)
	}
	if !slices.Contains(g.Volumes, "../../dashboards:"+path+":ro") || !slices.Contains(g.Volumes, "../grafana/provisioning:/etc/grafana/provisioning:ro") {
		t.Errorf("compose grafana volumes %v: want the dashboards at %s and the provisioning folder", g.Volumes, path)
	}
	home := g.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
	if rel, ok := strings.CutPrefix(home, path+"/"); !ok || !exists(filepath.Join(root, "dashboards", rel)) {
		t.Errorf("home dashboard %s is not one of dashboards/", home)
	}

	m := loadManifests(t)
	gc := m.container(t, "Deployment/grafana")
	env := envOf(gc)
	for _, v := range vars {
		if _, ok := env[v]; !ok {
			t.Errorf("kubernetes grafana: the data source reads $%s, which is not set", v)
		}
	}
	mounts := map[string]string{}
	for _, vm := range gc.VolumeMounts {
		mounts[vm.Name] = vm.MountPath
	}
	if mounts["dashboards"] != path {
		t.Errorf("kubernetes grafana mounts the dashboards at %q, the provider reads %q", mounts["dashboards"], path)
	}
	for _, f := range []string{"overview.json", "explorer.json", "event.json"} {
		if m.configMaps["statustrace-dashboards"][f] != string(read(t, filepath.Join(root, "dashboards", f))) {
			t.Errorf("statustrace-dashboards ConfigMap lacks %s", f)
		}
	}
	if rel, _ := strings.CutPrefix(envOf(gc)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"], path+"/"); m.configMaps["statustrace-dashboards"][rel] == "" {
		t.Errorf("kubernetes home dashboard is not in the dashboards ConfigMap")
	}
}

// Every dashboard target names a query type the ClickHouse plugin has (its
// src/types/sql.ts QueryType values): an unknown one, such as "timeSeries",
// is silently treated as a table.
func TestDashboardQueryTypesAreThePlugins(t *testing.T) {
	t.Parallel()
	known := []string{"table", "timeseries", "logs", "traces"}
	files, err := filepath.Glob(filepath.Join(root, "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	re := regexp.MustCompile(`"queryType":\s*"([^"]*)"`)
	n := 0
	for _, f := range files {
		for _, m := range re.FindAllStringSubmatch(string(read(t, f)), -1) {
			n++
			if !slices.Contains(known, m[1]) {
				t.Errorf("%s: queryType %q is not one of the plugin's %v", filepath.Base(f), m[1], known)
			}
		}
	}
	if n == 0 {
		t.Fatal("no queryType found in dashboards/*.json")
	}
}
