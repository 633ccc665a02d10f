package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

const promDir = "prometheus"

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// loadAlertRules decodes alerts.yaml strictly (an unknown key fails).
func loadAlertRules(t *testing.T) []alertRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(read(t, filepath.Join(promDir, "alerts.yaml"))))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// TestAlertRules: every rule is complete (severity, summary, description),
// names are unique, and every alert has a unit test.
func TestAlertRules(t *testing.T) {
	rules := loadAlertRules(t)
	if len(rules) == 0 {
		t.Fatal("no alert rules")
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join(promDir, "alerts_test.yaml"), &tests)
	tested := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			tested[a.Alertname] = true
		}
	}
	var names []string
	for _, r := range rules {
		if r.Alert == "" || r.Expr == "" {
			t.Errorf("rule %+v: want alert and expr", r)
		}
		if slices.Contains(names, r.Alert) {
			t.Errorf("alert %s defined twice", r.Alert)
		}
		names = append(names, r.Alert)
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("alert %s: want a summary and a description", r.Alert)
		}
		if !tested[r.Alert] {
			t.Errorf("alert %s has no unit test in alerts_test.yaml", r.Alert)
		}
	}
}

// TestAlertRulesPromtool: with promtool (PATH or STATUSTRACE_PROMTOOL;
// .ci/run fetches it) the rules parse as PromQL and pass their unit tests,
// which fire each alert and keep it quiet.
func TestAlertRulesPromtool(t *testing.T) {
	promtool := os.Getenv("STATUSTRACE_PROMTOOL")
	if promtool == "" {
		var err error
		if promtool, err = exec.LookPath("promtool"); err != nil {
			t.Skip("promtool not installed: PromQL and the rules' unit tests not checked (.ci/run fetches it)")
		}
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = promDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
