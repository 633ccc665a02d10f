// Package authtoken is the bearer-token format shared by the statustrace API
// and the scheduler's API: tokens (at least MinTokenLen characters) map to a
// Grant of one tenant and optionally some of its namespaces, and are kept
// only as SHA-256 hashes. Specs are `token=tenant` or `token=tenant:ns1,ns2`
// (flags, environment variables) or a JSON file.
package authtoken

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/statustrace/statustrace/event"
)

// Grant is what a token grants: one tenant, optionally only some of its
// namespaces.
type Grant struct {
	Tenant     string
	Namespaces []string // empty: every namespace of the tenant
}

// Allows reports whether g covers namespace.
func (g Grant) Allows(namespace string) bool {
	if len(g.Namespaces) == 0 {
		return true
	}
	for _, ns := range g.Namespaces {
		if ns == namespace {
			return true
		}
	}
	return false
}

// Tokens maps API tokens to principals. Tokens are kept only as SHA-256
// hashes, so a token file may hold hashes instead of the tokens themselves.
type Tokens struct {
	byHash map[[32]byte]Grant
}

// NewTokens returns an empty token set.
func NewTokens() *Tokens { return &Tokens{byHash: map[[32]byte]Grant{}} }

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.byHash) }

// MinTokenLen is the shortest token accepted: guessing must be hopeless.
const MinTokenLen = 16

func validKey(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > event.MaxKeyBytes || !utf8.ValidString(s) {
		return fmt.Errorf("%s %.40q: want valid UTF-8 of at most %d bytes", what, s, event.MaxKeyBytes)
	}
	return nil
}

// Add grants token to p.
func (t *Tokens) Add(token string, p Grant) error {
	if len(token) < MinTokenLen {
		return fmt.Errorf("token for tenant %q: shorter than %d characters", p.Tenant, MinTokenLen)
	}
	return t.addHash(sha256.Sum256([]byte(token)), p)
}

func (t *Tokens) addHash(h [32]byte, p Grant) error {
	if err := validKey("tenant", p.Tenant); err != nil {
		return err
	}
	for _, ns := range p.Namespaces {
		if err := validKey("namespace", ns); err != nil {
			return err
		}
	}
	if _, dup := t.byHash[h]; dup {
		return fmt.Errorf("token for tenant %q is configured twice", p.Tenant)
	}
	t.byHash[h] = p
	return nil
}

// Lookup returns the principal of token.
func (t *Tokens) Lookup(token string) (Grant, bool) {
	// Looking up the hash, not the token, leaks nothing useful through timing.
	p, ok := t.byHash[sha256.Sum256([]byte(token))]
	return p, ok
}

// ParseTokenSpecs reads tokens written as `token=tenant` or
// `token=tenant:ns1,ns2`, separated by ';' or newlines (the --token flag and
// STATUSTRACE_API_TOKENS).
func (t *Tokens) ParseTokenSpecs(specs string) error {
	for _, spec := range strings.FieldsFunc(specs, func(r rune) bool { return r == ';' || r == '\n' }) {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		token, rest, ok := strings.Cut(spec, "=")
		if !ok {
			return errors.New("token spec: want token=tenant[:namespace,...]")
		}
		tenant, nss, _ := strings.Cut(rest, ":")
		p := Grant{Tenant: tenant}
		if nss != "" {
			p.Namespaces = strings.Split(nss, ",")
		}
		if err := t.Add(token, p); err != nil {
			return err
		}
	}
	return nil
}

// tokenFile is the JSON token file:
//
//	{"tokens": [
//	  {"token": "...", "tenant": "acme"},
//	  {"token_sha256": "<64 hex digits>", "tenant": "acme", "namespaces": ["billing"]}
//	]}
type tokenFile struct {
	Tokens []struct {
		Token       string   `json:"token"`
		TokenSHA256 string   `json:"token_sha256"`
		Tenant      string   `json:"tenant"`
		Namespaces  []string `json:"namespaces"`
	} `json:"tokens"`
}

// LoadFile adds the tokens of a JSON token file.
func (t *Tokens) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	var f tokenFile
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("token file %s: %w", path, err)
	}
	for i, e := range f.Tokens {
		p := Grant{Tenant: e.Tenant, Namespaces: e.Namespaces}
		switch {
		case e.Token != "" && e.TokenSHA256 != "":
			err = errors.New("set token or token_sha256, not both")
		case e.Token != "":
			err = t.Add(e.Token, p)
		case e.TokenSHA256 != "":
			var h [32]byte
			raw, herr := hex.DecodeString(e.TokenSHA256)
			if herr != nil || len(raw) != 32 {
				err = errors.New("token_sha256: want 64 hex digits")
				break
			}
			copy(h[:], raw)
			err = t.addHash(h, p)
		default:
			err = errors.New("no token")
		}
		if err != nil {
			return fmt.Errorf("token file %s entry %d: %w", path, i+1, err)
		}
	}
	return nil
}

// Bearer extracts the token of an Authorization: Bearer header.
func Bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}
