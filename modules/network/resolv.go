package network

import (
	"fmt"
	"net"
	"strings"

	"github.com/gridnode/gridnode/internal/printable"
	"github.com/gridnode/gridnode/node/fact"
)

// Limits of the search line, as resolvers read it (glibc: 6 domains, 256
// characters; the Go resolver takes what glibc takes).
const (
	maxSearch     = 6
	maxSearchLine = 256
)

// searchDomains keeps the DHCP-supplied domain and search values that are
// domain names (RFC 1123 host names: labels of letters, digits, '-' and
// '_', 1 to 63 long, at most 253 in all, an optional final dot), up to the
// resolvers' limits. Anything else is refused and returned, quoted for a
// log line: a DHCP server on the farm's network must not write lines of
// its own into /etc/resolv.conf ("options ndots:15", another
// "nameserver"), nor feed resolvers what they cannot parse.
func searchDomains(values []string) (keep, refused []string) {
	length := len("search")
	for _, v := range values {
		why := ""
		switch {
		case !isDomain(v):
			why = "not a domain name"
		case len(keep) == maxSearch:
			why = fmt.Sprintf("more than %d search domains", maxSearch)
		case length+1+len(v) > maxSearchLine:
			why = fmt.Sprintf("the search line would pass %d characters", maxSearchLine)
		}
		if why != "" {
			refused = append(refused, fmt.Sprintf("%q (%s)", printable.String(v), why))
			continue
		}
		keep = append(keep, v)
		length += 1 + len(v)
	}
	return keep, refused
}

func isDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// resolvConf is the text of /etc/resolv.conf: search is checked already
// (searchDomains), dns are addresses.
func resolvConf(dns []net.IP, search []string) string {
	var b strings.Builder
	b.WriteString("# written by gridnode's network module\n")
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, ip := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", ip)
	}
	return b.String()
}

func writeResolvConf(dns []net.IP, search []string) error {
	return fact.WriteFile(resolvConfPath, []byte(resolvConf(dns, search)), 0o644)
}
