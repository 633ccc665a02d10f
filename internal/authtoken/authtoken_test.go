package authtoken

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSpecs(t *testing.T) {
	toks := NewTokens()
	if err := toks.ParseTokenSpecs("token-for-acme-000001=acme; token-for-billing-001=acme:billing,refunds\n"); err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 2 {
		t.Fatalf("%d tokens", toks.Len())
	}
	g, ok := toks.Lookup("token-for-billing-001")
	if !ok || g.Tenant != "acme" || !slices.Equal(g.Namespaces, []string{"billing", "refunds"}) {
		t.Errorf("grant %+v %v", g, ok)
	}
	if !g.Allows("billing") || g.Allows("shop") {
		t.Error("namespace-limited grant")
	}
	if g, _ := toks.Lookup("token-for-acme-000001"); !g.Allows("anything") {
		t.Error("a grant without namespaces covers every namespace")
	}
	if _, ok := toks.Lookup("token-for-acme-00000"); ok {
		t.Error("a prefix of a token matched")
	}
	for spec, want := range map[string]string{
		"short=acme":                "shorter than",
		"no-equals-sign-here-1234":  "want token=tenant",
		"token-for-acme-000001=":    "tenant is empty",
		"token-for-acme-000002=a:,": "namespace is empty",
	} {
		err := NewTokens().ParseTokenSpecs(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", spec, err, want)
		}
	}
	if err := toks.ParseTokenSpecs("token-for-acme-000001=globex"); err == nil {
		t.Error("a token configured twice was accepted")
	}
}

func TestFile(t *testing.T) {
	sum := sha256.Sum256([]byte("hashed-token-0000001"))
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	body := `{"tokens": [{"token": "plain-token-00000001", "tenant": "acme"},
	  {"token_sha256": "` + hex.EncodeToString(sum[:]) + `", "tenant": "globex", "namespaces": ["billing"]}]}`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	toks := NewTokens()
	if err := toks.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if g, ok := toks.Lookup("hashed-token-0000001"); !ok || g.Tenant != "globex" {
		t.Errorf("hashed entry: %+v %v", g, ok)
	}
	for name, bad := range map[string]string{
		"both":    `{"tokens": [{"token": "plain-token-00000001", "token_sha256": "00", "tenant": "a"}]}`,
		"hash":    `{"tokens": [{"token_sha256": "abc", "tenant": "a"}]}`,
		"unknown": `{"tokens": [{"tokn": "plain-token-00000001", "tenant": "a"}]}`,
		"none":    `{"tokens": [{"tenant": "a"}]}`,
	} {
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := NewTokens().LoadFile(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBearer(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc":   "abc",
		"bearer  abc ": "abc",
		"Basic abc":    "",
		"Bearer ":      "",
		"":             "",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		got, ok := Bearer(r)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v", h, got, ok)
		}
	}
}
