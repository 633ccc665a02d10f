package chlocal

import (
	"net/url"
	"sort"
)

// paramSet is a request's parameters with a stable iteration order, so the
// SET statements a request turns into are deterministic.
type paramSet struct{ url.Values }

func (p paramSet) keys() []string {
	ks := make([]string, 0, len(p.Values))
	for k := range p.Values {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
