package deploy_test

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const dockerfile = "docker/Dockerfile"

// stage is one FROM of the Dockerfile.
type stage struct {
	name, from string
	lines      []string // instructions, continuation lines joined
}

func parseDockerfile(t *testing.T) (stages []stage, args map[string]string) {
	t.Helper()
	args = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(read(t, dockerfile)))
	var cur *stage
	var pending string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			pending += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, pending = pending+line, ""
		fields := strings.Fields(line)
		switch strings.ToUpper(fields[0]) {
		case "ARG":
			if k, v, ok := strings.Cut(fields[1], "="); ok && cur == nil {
				args[k] = v
			}
		case "FROM":
			st := stage{from: fields[1]}
			if len(fields) == 4 && strings.EqualFold(fields[2], "AS") {
				st.name = fields[3]
			}
			stages = append(stages, st)
			cur = &stages[len(stages)-1]
			continue
		}
		if cur != nil {
			cur.lines = append(cur.lines, line)
		}
	}
	return stages, args
}

var (
	goBuildRE = regexp.MustCompile(`go build .*-o (\S+) (\./\S+)`)
	copyRE    = regexp.MustCompile(`^COPY (?:--chown=\S+ )?(--from=(\S+) )?(?:--chown=\S+ )?(\S+) (\S+)$`)
)

// The images: the four targets exist, build real main packages, copy only
// what exists (files of the repository, binaries of earlier stages), start
// from pinned images and run as non-root.
func TestDockerfile(t *testing.T) {
	stages, args := parseDockerfile(t)
	byName := map[string]int{}
	for i, s := range stages {
		if s.name != "" {
			byName[s.name] = i
		}
	}
	for _, target := range []string{"statustrace", "scheduler", "plugin", "collector"} {
		if _, ok := byName[target]; !ok {
			t.Errorf("no %q target", target)
		}
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(read(t, root+"/go.mod"))
	if goVersion == nil || args["GO_VERSION"] != string(goVersion[1]) {
		t.Errorf("ARG GO_VERSION=%s, want go.mod's %s", args["GO_VERSION"], goVersion[1])
	}
	for i, s := range stages {
		from := composeVarRE.ReplaceAllStringFunc(s.from, func(m string) string { return args[composeVarRE.FindStringSubmatch(m)[1]] })
		if _, isStage := byName[from]; !isStage && from != "scratch" && !pinned(from) {
			t.Errorf("stage %s: base image %q is not pinned", s.name, s.from)
		}
		isRuntime := slices.Contains([]string{"statustrace", "scheduler", "collector"}, s.name)
		var user string
		for _, l := range s.lines {
			if m := goBuildRE.FindStringSubmatch(l); m != nil {
				pkg := filepath.Join(root, m[2])
				if !exists(pkg) {
					if m[2] == "./cmd/statustrace" {
						t.Logf("stage %s: %s is not in the tree yet (issue 5); skipping its check", s.name, m[2])
						continue
					}
					t.Errorf("stage %s builds %s, which does not exist", s.name, m[2])
					continue
				}
				if !isMainPackage(t, pkg) {
					t.Errorf("stage %s builds %s, which is not a main package", s.name, m[2])
				}
			}
			if m := copyRE.FindStringSubmatch(l); m != nil {
				if m[2] != "" {
					j, ok := byName[m[2]]
					if !ok || j >= i {
						t.Errorf("stage %s copies from %q, not an earlier stage", s.name, m[2])
					}
				} else if !exists(filepath.Join(root, m[3])) {
					t.Errorf("stage %s copies %s, which is not in the repository", s.name, m[3])
				}
			}
			if strings.HasPrefix(l, "USER ") {
				user = strings.TrimPrefix(l, "USER ")
			}
		}
		if isRuntime && (user == "" || strings.HasPrefix(user, "0") || user == "root") {
			t.Errorf("target %s runs as %q, want a non-root user", s.name, user)
		}
	}
}

func isMainPackage(t *testing.T, dir string) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		if b := read(t, f); bytes.HasPrefix(b, []byte("package main\n")) || bytes.Contains(b, []byte("\npackage main\n")) {
			return true
		}
	}
	return false
}

// The .dockerignore beside the Dockerfile keeps the context small but must
// not drop anything the builds read.
func TestDockerignore(t *testing.T) {
	var patterns []string
	for _, l := range strings.Split(string(read(t, dockerfile+".dockerignore")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	// Docker's matching, as far as these patterns need: a pattern matches a
	// path or any of its parents; "**/" matches at any depth.
	ignored := func(p string) bool {
		for _, pat := range patterns {
			anyDepth := strings.HasPrefix(pat, "**/")
			pat = strings.TrimPrefix(pat, "**/")
			for q := p; q != "."; q = path.Dir(q) {
				if ok, _ := path.Match(pat, q); ok {
					return true
				}
				if ok, _ := path.Match(pat, path.Base(q)); ok && anyDepth {
					return true
				}
			}
		}
		return false
	}
	needed := []string{"go.mod", "go.sum", "collector/config.yaml", "dashboards/overview.json", "dashboards/event.json"}
	for _, dir := range []string{"cmd/scheduler", "cmd/statustrace-plugin", "collector", "exporter", "queries/sql", "event", "internal/schema"} {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*"))
		for _, f := range files {
			if rel, _ := filepath.Rel(root, f); !strings.HasSuffix(f, "_test.go") {
				if fi, err := os.Stat(f); err == nil && !fi.IsDir() {
					needed = append(needed, filepath.ToSlash(rel))
				}
			}
		}
	}
	for _, p := range needed {
		if ignored(p) {
			t.Errorf("%s is excluded from the build context", p)
		}
	}
	for _, p := range []string{"deploy/local/node_modules/x", ".git/HEAD", "bin/scheduler", "exporter/ch_test.go"} {
		if !ignored(p) {
			t.Errorf("%s should be excluded from the build context", p)
		}
	}
}
