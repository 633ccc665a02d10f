package deploy_test

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"

	"go.yaml.in/yaml/v3"
)

const k8sDir = "kubernetes"

// secretKeys are the keys of the statustrace-secrets Secret the manifests
// read (README.md says how to create it).
var secretKeys = []string{"clickhouse-password", "clickhouse-reader-password", "api-tokens", "scheduler-token", "scheduler-api-tokens", "grafana-admin-password"}

type kustomization struct {
	Namespace          string   `yaml:"namespace"`
	Resources          []string `yaml:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
	} `yaml:"configMapGenerator"`
}

// manifests is the Kubernetes objects of deploy/kubernetes, assembled the
// way kustomize builds them (resources, nested kustomizations, ConfigMap
// generators) and decoded strictly into the API types: an unknown or
// misplaced field is an error.
type manifests struct {
	namespace    string
	services     map[string]*corev1.Service
	configMaps   map[string]map[string]string // name -> key -> content
	statefulSets map[string]*appsv1.StatefulSet
	deployments  map[string]*appsv1.Deployment
	jobs         map[string]*batchv1.Job
	pdbs         map[string]*policyv1.PodDisruptionBudget
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	kinds        []string // kind/name of every object
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{
		services: map[string]*corev1.Service{}, configMaps: map[string]map[string]string{},
		statefulSets: map[string]*appsv1.StatefulSet{}, deployments: map[string]*appsv1.Deployment{},
		jobs: map[string]*batchv1.Job{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
	}
	m.loadKustomization(t, k8sDir, true)
	sort.Strings(m.kinds)
	return m
}

func (m *manifests) loadKustomization(t *testing.T, dir string, top bool) {
	t.Helper()
	var k kustomization
	readYAML(t, filepath.Join(dir, "kustomization.yaml"), &k)
	if top {
		m.namespace = k.Namespace
	}
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		if exists(filepath.Join(p, "kustomization.yaml")) {
			m.loadKustomization(t, p, false)
			continue
		}
		for i, doc := range bytes.Split(read(t, p), []byte("\n---\n")) {
			m.add(t, fmt.Sprintf("%s#%d", p, i), doc)
		}
	}
	for _, g := range k.ConfigMapGenerator {
		data := map[string]string{}
		for _, f := range g.Files {
			key, file, ok := strings.Cut(f, "=")
			if !ok {
				key, file = filepath.Base(f), f
			}
			data[key] = string(read(t, filepath.Join(dir, file)))
		}
		m.configMaps[g.Name] = data
		m.kinds = append(m.kinds, "ConfigMap/"+g.Name)
	}
}

func (m *manifests) add(t *testing.T, where string, doc []byte) {
	t.Helper()
	var head struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := sigsyaml.Unmarshal(doc, &head); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if head.Kind == "" {
		return // comments only
	}
	strict := func(v any) {
		if err := sigsyaml.UnmarshalStrict(doc, v); err != nil {
			t.Errorf("%s (%s %s): %v", where, head.Kind, head.Metadata.Name, err)
		}
	}
	name := head.Metadata.Name
	switch head.Kind {
	case "Namespace":
		strict(&corev1.Namespace{})
	case "Service":
		o := &corev1.Service{}
		strict(o)
		m.services[name] = o
	case "StatefulSet":
		o := &appsv1.StatefulSet{}
		strict(o)
		m.statefulSets[name] = o
	case "Deployment":
		o := &appsv1.Deployment{}
		strict(o)
		m.deployments[name] = o
	case "Job":
		o := &batchv1.Job{}
		strict(o)
		m.jobs[name] = o
	case "PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		strict(o)
		m.pdbs[name] = o
	case "HorizontalPodAutoscaler":
		o := &autoscalingv2.HorizontalPodAutoscaler{}
		strict(o)
		m.hpas[name] = o
	default:
		t.Errorf("%s: kind %s is not checked by this test: add it", where, head.Kind)
	}
	m.kinds = append(m.kinds, head.Kind+"/"+name)
}

// pods are the pod templates by workload.
func (m *manifests) pods() map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for n, s := range m.statefulSets {
		out["StatefulSet/"+n] = &s.Spec.Template
	}
	for n, d := range m.deployments {
		out["Deployment/"+n] = &d.Spec.Template
	}
	for n, j := range m.jobs {
		out["Job/"+n] = &j.Spec.Template
	}
	return out
}

func (m *manifests) selecting(sel map[string]string) []string {
	var out []string
	for n, p := range m.pods() {
		if len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(p.Labels)) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// TestKubernetesManifests checks the objects and every reference between
// them.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	if m.namespace != "statustrace" {
		t.Errorf("namespace %q, want statustrace", m.namespace)
	}
	for _, w := range []string{"StatefulSet/clickhouse-keeper", "StatefulSet/clickhouse-shard0", "StatefulSet/clickhouse-shard1",
		"StatefulSet/collector", "Deployment/collector-gateway", "Deployment/statustrace-api", "StatefulSet/scheduler", "Deployment/grafana"} {
		if !slices.Contains(m.kinds, w) {
			t.Errorf("missing %s", w)
		}
	}
	for n, s := range m.statefulSets {
		if !labels.SelectorFromSet(s.Spec.Selector.MatchLabels).Matches(labels.Set(s.Spec.Template.Labels)) {
			t.Errorf("StatefulSet %s: selector does not match its pods", n)
		}
		svc, ok := m.services[s.Spec.ServiceName]
		if !ok || svc.Spec.ClusterIP != corev1.ClusterIPNone && n != "scheduler" {
			t.Errorf("StatefulSet %s: serviceName %q is not a headless Service", n, s.Spec.ServiceName)
		}
	}
	for n, d := range m.deployments {
		if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: selector does not match its pods", n)
		}
	}
	claims := map[string][]string{}
	for n, s := range m.statefulSets {
		for _, c := range s.Spec.VolumeClaimTemplates {
			claims["StatefulSet/"+n] = append(claims["StatefulSet/"+n], c.Name)
		}
	}
	for w, p := range m.pods() {
		m.checkPod(t, w, &p.Spec, claims[w])
	}
	for n, s := range m.services {
		sel := m.selecting(s.Spec.Selector)
		if len(sel) == 0 {
			t.Errorf("Service %s selects no pods", n)
			continue
		}
		for _, sp := range s.Spec.Ports {
			port := sp.TargetPort.String()
			if sp.TargetPort.IntValue() == 0 && port == "0" || port == "" {
				port = fmt.Sprint(sp.Port)
			}
			for _, w := range sel {
				if !hasPort(m.pods()[w].Spec, port) {
					t.Errorf("Service %s: port %s not served by %s", n, port, w)
				}
			}
		}
	}
	for n, p := range m.pdbs {
		if len(m.selecting(p.Spec.Selector.MatchLabels)) == 0 {
			t.Errorf("PodDisruptionBudget %s selects nothing", n)
		}
	}
	for n, h := range m.hpas {
		if _, ok := m.deployments[h.Spec.ScaleTargetRef.Name]; !ok || h.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("HPA %s scales %v, not a Deployment here", n, h.Spec.ScaleTargetRef)
		}
	}
	// The README tells how to create every secret key the manifests read.
	readme := string(read(t, "README.md"))
	for _, k := range secretKeys {
		if !strings.Contains(readme, k) {
			t.Errorf("README.md does not mention secret key %s", k)
		}
	}
}

func hasPort(spec corev1.PodSpec, port string) bool {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
				return true
			}
		}
	}
	return false
}

func (m *manifests) checkPod(t *testing.T, w string, spec *corev1.PodSpec, claims []string) {
	t.Helper()
	vols := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		vols[spec.Volumes[i].Name] = &spec.Volumes[i]
		if cm := spec.Volumes[i].ConfigMap; cm != nil {
			if _, ok := m.configMaps[cm.Name]; !ok {
				t.Errorf("%s: volume %s uses ConfigMap %s, which is not generated", w, spec.Volumes[i].Name, cm.Name)
			}
		}
	}
	for _, c := range spec.Containers {
		if !pinned(c.Image) {
			t.Errorf("%s/%s: image %q is not pinned", w, c.Name, c.Image)
		}
		r := c.Resources
		if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: want cpu and memory requests and a memory limit", w, c.Name)
		}
		for _, vm := range c.VolumeMounts {
			v, ok := vols[vm.Name]
			if !ok && !slices.Contains(claims, vm.Name) {
				t.Errorf("%s/%s: mounts unknown volume %s", w, c.Name, vm.Name)
				continue
			}
			if ok && v.ConfigMap != nil && vm.SubPath != "" {
				if _, ok := m.configMaps[v.ConfigMap.Name][vm.SubPath]; !ok {
					t.Errorf("%s/%s: ConfigMap %s has no key %s", w, c.Name, v.ConfigMap.Name, vm.SubPath)
				}
			}
		}
		var defined []string
		for _, e := range c.Env {
			for _, ref := range regexp.MustCompile(`\$\((\w+)\)`).FindAllStringSubmatch(e.Value, -1) {
				if !slices.Contains(defined, ref[1]) {
					t.Errorf("%s/%s: env %s uses $(%s) before it is defined", w, c.Name, e.Name, ref[1])
				}
			}
			defined = append(defined, e.Name)
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				if s := e.ValueFrom.SecretKeyRef; s.Name != "statustrace-secrets" || !slices.Contains(secretKeys, s.Key) {
					t.Errorf("%s/%s: env %s reads secret %s/%s, not one README.md documents", w, c.Name, e.Name, s.Name, s.Key)
				}
			}
		}
		for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if pr == nil {
				continue
			}
			port := ""
			if pr.HTTPGet != nil {
				port = pr.HTTPGet.Port.String()
			} else if pr.TCPSocket != nil {
				port = pr.TCPSocket.Port.String()
			}
			if port != "" && !hasPort(corev1.PodSpec{Containers: []corev1.Container{c}}, port) {
				t.Errorf("%s/%s: probe port %s is not a container port", w, c.Name, port)
			}
		}
	}
}

func (m *manifests) container(t *testing.T, workload string) corev1.Container {
	t.Helper()
	p, ok := m.pods()[workload]
	if !ok || len(p.Spec.Containers) == 0 {
		t.Fatalf("no %s", workload)
	}
	return p.Spec.Containers[0]
}

func envOf(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		out[e.Name] = e.Value
		if e.ValueFrom != nil {
			out[e.Name] = "from:" + e.Name
		}
	}
	return out
}

// The two collector tiers: the second tier's configuration passes the
// collector's validation in cluster mode; the gateways route by trace ID to
// the second tier's pods through its headless Service and port.
func TestKubernetesCollectors(t *testing.T) {
	m := loadManifests(t)
	cfgFile := filepath.Join(k8sDir, "collector", "collector.yaml")
	validateCollectorConfig(t, cfgFile, map[string]string{"CLICKHOUSE_PASSWORD": "x", "STATUSTRACE_RETENTION": "72h"})

	var gw struct {
		Exporters struct {
			Loadbalancing struct {
				RoutingKey string `yaml:"routing_key"`
				Protocol   struct {
					OTLP map[string]any `yaml:"otlp"`
				} `yaml:"protocol"`
				Resolver struct {
					DNS struct {
						Hostname string `yaml:"hostname"`
						Port     int    `yaml:"port"`
					} `yaml:"dns"`
				} `yaml:"resolver"`
			} `yaml:"loadbalancing"`
		} `yaml:"exporters"`
		Service struct {
			Pipelines map[string]struct {
				Exporters []string `yaml:"exporters"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	readYAML(t, filepath.Join(k8sDir, "collector", "gateway.yaml"), &gw)
	lb := gw.Exporters.Loadbalancing
	if lb.RoutingKey != "traceID" {
		t.Errorf("gateway routing_key %q, want traceID", lb.RoutingKey)
	}
	if q, _ := lb.Protocol.OTLP["sending_queue"].(map[string]any); q == nil || q["enabled"] != false {
		t.Errorf("gateway: want a synchronous export (sending_queue disabled) so acks mean the second tier has it")
	}
	if !slices.Equal(gw.Service.Pipelines["traces"].Exporters, []string{"loadbalancing"}) {
		t.Errorf("gateway traces pipeline exports to %v, want loadbalancing", gw.Service.Pipelines["traces"].Exporters)
	}
	svcName, rest, _ := strings.Cut(lb.Resolver.DNS.Hostname, ".")
	if rest != m.namespace+".svc.cluster.local" {
		t.Errorf("gateway resolves %q, want <service>.%s.svc.cluster.local", lb.Resolver.DNS.Hostname, m.namespace)
	}
	svc, ok := m.services[svcName]
	if !ok || svc.Spec.ClusterIP != corev1.ClusterIPNone || !slices.Equal(m.selecting(svc.Spec.Selector), []string{"StatefulSet/collector"}) {
		t.Errorf("gateway resolves %s: want the headless Service of the collector StatefulSet", svcName)
	}
	if !hasPort(m.pods()["StatefulSet/collector"].Spec, fmt.Sprint(lb.Resolver.DNS.Port)) {
		t.Errorf("gateway sends to port %d, which the collector pods do not serve", lb.Resolver.DNS.Port)
	}
	if c := m.container(t, "Deployment/collector-gateway"); !strings.Contains(c.Image, "opentelemetry-collector-contrib") {
		t.Errorf("gateway image %s: want the contrib distribution (it has the loadbalancing exporter)", c.Image)
	}

	// The scheduler sends to the gateways.
	gwSvc := m.services["collector-gateway"]
	var otlpPort string
	for _, p := range gwSvc.Spec.Ports {
		if p.Name == "otlp-grpc" {
			otlpPort = fmt.Sprint(p.Port)
		}
	}
	if _, ok := m.configMaps["scheduler-config"]["scheduler.yaml"]; !ok {
		t.Fatal("no scheduler-config ConfigMap with scheduler.yaml")
	}
	checkSchedulerConfig(t, filepath.Join(k8sDir, "scheduler-config.yaml"), "collector-gateway", net.JoinHostPort("", otlpPort))

	// The API reaches the ClickHouse Service; its flags exist.
	api := m.container(t, "Deployment/statustrace-api")
	dsn := strings.ReplaceAll(envOf(api)["CLICKHOUSE_DSN"], "$(CH_PASSWORD)", "x")
	if u, err := url.Parse(dsn); err != nil || m.services[u.Hostname()] == nil || u.Port() != "9000" {
		t.Errorf("API CLICKHOUSE_DSN %q: want the clickhouse Service's native port", dsn)
	}
	checkServeFlags(t, api.Args)
}

// kustomize (its Go API, what `kubectl kustomize` runs) builds the same
// objects this test assembled, all in the statustrace namespace.
func TestKubernetesKustomizeBuild(t *testing.T) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), k8sDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", k8sDir, err)
	}
	out, err := resMap.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name      string `yaml:"name"`
				Namespace string `yaml:"namespace"`
			} `yaml:"metadata"`
		}
		if err := dec.Decode(&o); err != nil {
			break
		}
		got = append(got, o.Kind+"/"+o.Metadata.Name)
		if o.Kind != "Namespace" && o.Metadata.Namespace != "statustrace" {
			t.Errorf("%s/%s is not in the statustrace namespace", o.Kind, o.Metadata.Name)
		}
	}
	sort.Strings(got)
	if m := loadManifests(t); !slices.Equal(got, m.kinds) {
		t.Errorf("kustomize builds %v\nthe test assembled %v", got, m.kinds)
	}
}
