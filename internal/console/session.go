package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/statustrace/statustrace/internal/api"
)

// cookieName is the session cookie: an opaque random ID (HttpOnly,
// SameSite=Strict), mapped to the principal in memory, so a restart signs
// everyone out and nothing about the token reaches the browser.
const cookieName = "statustrace_session"

type session struct {
	p       api.Principal
	csrf    string
	expires time.Time
}

// sessions is the server-side session map.
type sessions struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: map[string]*session{}}
}

func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session for p and returns its ID.
func (s *sessions) create(p api.Principal) string {
	id := randomID()
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m { // drop expired ones as new ones come
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	s.m[id] = &session{p: p, csrf: randomID(), expires: now.Add(s.ttl)}
	return id
}

func (s *sessions) get(r *http.Request) (*session, string) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil, ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.m[c.Value]
	if sess == nil || time.Now().After(sess.expires) {
		delete(s.m, c.Value)
		return nil, ""
	}
	return sess, c.Value
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func (s *session) csrfOK(v string) bool {
	return v != "" && subtle.ConstantTimeCompare([]byte(v), []byte(s.csrf)) == 1
}

func setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: value, Path: "/ui/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// sameOrigin rejects a cross-site POST: Sec-Fetch-Site, when the browser
// sends it, must be same-origin, and Origin, when present, must be this
// server. SameSite=Strict and the per-session CSRF token are the other two
// locks.
func sameOrigin(r *http.Request) bool {
	if v := r.Header.Get("Sec-Fetch-Site"); v != "" && v != "same-origin" && v != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		scheme := "http://"
		if r.TLS != nil {
			scheme = "https://"
		}
		return o == scheme+r.Host
	}
	return true
}
