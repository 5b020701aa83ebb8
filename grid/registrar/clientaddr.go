package registrar

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address a request came from, for the per-address
// limits: its peer's, or, when the peer is a trusted proxy (Config.
// TrustedProxies), the nearest address before it that no trusted proxy
// holds, read from Forwarded (RFC 7239) or else X-Forwarded-For. Those
// headers are the client's to write except for what each proxy appends, so
// they are read from the right, and only as far as the trusted proxies go:
// a client cannot pass for another by sending them. A hop a proxy hid
// ("unknown", an obfuscated name) stops the walk at the proxy before it.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return peer
	}
	hops := forwardedFor(r.Header)
	if hops == nil {
		hops = xForwardedFor(r.Header)
	}
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := hopAddr(hops[i])
		if !ok {
			break
		}
		addr = a
		if !isTrusted(a, trusted) {
			break
		}
	}
	return addr
}

// limitKey is the bucket an address is limited in: an IPv4 address alone,
// an IPv6 address by its /64 (what one subscriber, or one host picking
// addresses at random, holds).
func limitKey(a netip.Addr) string {
	if !a.IsValid() {
		return "?"
	}
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor lists the for= values of the Forwarded headers in order, or
// nil when there are none.
func forwardedFor(h http.Header) []string {
	var out []string
	for _, line := range h.Values("Forwarded") {
		for _, elem := range strings.Split(line, ",") {
			found := ""
			for _, pair := range strings.Split(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
					found = strings.Trim(strings.TrimSpace(v), `"`)
				}
			}
			out = append(out, found) // "" (no for=) is a hop hidden
		}
	}
	return out
}

func xForwardedFor(h http.Header) []string {
	var out []string
	for _, line := range h.Values("X-Forwarded-For") {
		for _, hop := range strings.Split(line, ",") {
			out = append(out, strings.TrimSpace(hop))
		}
	}
	return out
}

// hopAddr reads one hop: an address, maybe with a port, IPv6 maybe in
// brackets (Forwarded writes "[2001:db8::1]:4711"). The unspecified
// address (0.0.0.0, ::) is no client: a hop hidden.
func hopAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if ap, perr := netip.ParseAddrPort(s); perr == nil {
		a, err = ap.Addr(), nil
	}
	if err != nil || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
