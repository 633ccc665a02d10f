package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/statustrace/statustrace/internal/api"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3"); without
// it the module version and VCS revision of the build are shown.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	v, rev, dirty := "devel", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " (" + rev
		if dirty {
			v += ", modified"
		}
		v += ")"
	}
	return v
}

// parseDuration is time.ParseDuration plus a day unit ("1d", "1d12h",
// "1.5d"), refusing negative values: every duration on this command line
// is a length or "that long ago".
func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		return 0, errors.New("must not be negative")
	}
	var days float64
	if i := strings.IndexByte(t, 'd'); i >= 0 {
		n, err := strconv.ParseFloat(strings.TrimPrefix(t[:i], "+"), 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q: want a duration such as 90s, 15m, 3h or 2d", s)
		}
		days, t = n, t[i+1:]
	}
	var rest time.Duration
	if t != "" {
		var err error
		if rest, err = time.ParseDuration(t); err != nil {
			return 0, fmt.Errorf("%q: want a duration such as 90s, 15m, 3h or 2d", s)
		}
	} else if days == 0 && !strings.Contains(s, "d") {
		return 0, fmt.Errorf("%q: want a duration such as 90s, 15m, 3h or 2d", s)
	}
	d := time.Duration(days*float64(24*time.Hour)) + rest
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

// durationValue is a pflag.Value with parseDuration's syntax.
type durationValue struct{ d *time.Duration }

func (v durationValue) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func (v durationValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (durationValue) Type() string { return "duration" }

// durationVar defines a duration flag that takes "d" and refuses negatives.
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var(durationValue{p}, name, usage)
}

// groupCmd makes a command with subcommands refuse an unknown one (exit 2,
// with a suggestion) instead of printing help and exiting 0; alone it
// prints its help.
func groupCmd(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2
		}
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			best := s[0]
			for _, n := range s[1:] {
				if editDistance(args[0], n) < editDistance(args[0], best) {
					best = n
				}
			}
			msg += fmt.Sprintf(" (did you mean %q?)", best)
		}
		return usagef("%s; see %s --help", msg, c.CommandPath())
	}
	return cmd
}

// usageArgs makes every argument-count error of cmd and its subcommands a
// usage error (exit 2).
func usageArgs(cmd *cobra.Command) {
	if orig := cmd.Args; orig != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := orig(c, args); err != nil {
				var u usageError
				if errors.As(err, &u) {
					return err
				}
				return usagef("%s: %v; see %s --help", c.CommandPath(), err, c.CommandPath())
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		usageArgs(c)
	}
}

// explain turns an error into the line the user reads and, where one
// helps, a hint: a server that cannot be reached or that refuses the token
// is named with the flag that chose it, never as a raw transport error.
func (a *app) explain(err error) (string, string) {
	var ae *api.APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusUnauthorized:
			return fmt.Sprintf("the API at %s refused the token (%s)", a.server, ae.Body.Code),
				"check --token / STATUSTRACE_TOKEN: it must be one of the tokens `statustrace serve` was given"
		case http.StatusForbidden:
			return ae.Error(), "the token's tenant or namespaces do not cover this"
		case http.StatusNotImplemented:
			return ae.Error(), "start `statustrace serve` with --scheduler-url, --scheduler-token and --scheduler-tenant"
		}
		return ae.Error(), ""
	}
	var ue *url.Error
	if errors.As(err, &ue) && a.server != "" {
		return fmt.Sprintf("cannot reach the statustrace API at %s: %s", a.server, netReason(ue.Err)),
			"is `statustrace serve` running there? check --server / STATUSTRACE_SERVER"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && a.server == "" && a.dsn != "" {
		host := a.dsn
		if u, perr := url.Parse(a.dsn); perr == nil && u.Host != "" {
			host = u.Host
		}
		return fmt.Sprintf("cannot reach ClickHouse at %s: %s", host, netReason(oe)),
			"is ClickHouse running there? check --dsn / CLICKHOUSE_DSN"
	}
	return err.Error(), ""
}

// netReason is the short cause of a connection failure.
func netReason(err error) string {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dns):
		return "no such host " + dns.Name
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// editDistance is the Levenshtein distance of a and b (to pick the closest
// of cobra's suggestions).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
