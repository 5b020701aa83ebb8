package registrar

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
)

// The per-address limit groups an IPv6 client by its /64; behind a trusted
// proxy it is the forwarded client's address, and from any other peer the
// forwarding headers are ignored.
func TestRateLimitPerAddress(t *testing.T) {
	st := storetest.SQLite().Open(t)
	proxied := newEnv(t, st, Config{RatePerIP: 0.01, BurstPerIP: 1, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	get := func(e *env, hdr http.Header) int {
		t.Helper()
		got, _ := e.callH("GET", "/api/v1/farms", nil, nil, hdr, nil)
		return got
	}
	xff := func(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }
	fwd := func(v string) http.Header { return http.Header{"Forwarded": {v}} }
	for _, c := range []struct {
		name string
		hdr  http.Header
		want int
	}{
		{"first of a /64", xff("2001:db8:1:2::1"), 200},
		{"same /64, other address", xff("2001:db8:1:2:ffff::9"), 429},
		{"same /64 via Forwarded", fwd(`for="[2001:db8:1:2::abcd]:4711"`), 429},
		{"next /64", xff("2001:db8:1:3::1"), 200},
		{"IPv4 client", xff("192.0.2.7"), 200},
		{"another IPv4 client", xff("192.0.2.8"), 200},
		{"IPv4 client again, mapped", xff("::ffff:192.0.2.7"), 429},
		// A client cannot pass for another by writing the header itself:
		// only what the trusted proxy appended (the rightmost) counts.
		{"spoofed left of the proxy's", xff("198.51.100.1, 192.0.2.8"), 429},
		{"proxies chained", xff("198.51.100.2, 127.0.0.5"), 200},
		{"no header: the proxy itself", nil, 200},
		{"the proxy again", nil, 429},
	} {
		if got := get(proxied, c.hdr); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	direct := newEnv(t, st, Config{RatePerIP: 0.01, BurstPerIP: 1})
	if got := get(direct, xff("192.0.2.50")); got != 200 {
		t.Fatalf("first request: %d", got)
	}
	if got := get(direct, xff("192.0.2.51")); got != 429 {
		t.Fatalf("X-Forwarded-For from a peer that is no trusted proxy was taken: %d, want 429", got)
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, c := range []struct {
		peer string
		hdr  http.Header
		want string
	}{
		{"203.0.113.9:5000", http.Header{"X-Forwarded-For": {"192.0.2.1"}}, "203.0.113.9"},
		{"10.1.1.1:5000", http.Header{"X-Forwarded-For": {"192.0.2.1"}}, "192.0.2.1"},
		{"10.1.1.1:5000", http.Header{"X-Forwarded-For": {"192.0.2.1, 10.2.2.2"}}, "192.0.2.1"},
		{"10.1.1.1:5000", http.Header{"X-Forwarded-For": {"192.0.2.1", "192.0.2.2"}}, "192.0.2.2"},
		{"10.1.1.1:5000", http.Header{"X-Forwarded-For": {"garbage"}}, "10.1.1.1"},
		{"10.1.1.1:5000", http.Header{"X-Forwarded-For": {"192.0.2.1, unknown"}}, "10.1.1.1"},
		{"[fd00::1]:443", http.Header{"Forwarded": {`for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17"},
		{"[fd00::1]:443", http.Header{"Forwarded": {`for=unknown`}, "X-Forwarded-For": {"192.0.2.1"}}, "fd00::1"},
		{"[::ffff:10.0.0.1]:1", http.Header{"X-Forwarded-For": {"[2001:db8::1]"}}, "2001:db8::1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for k, v := range c.hdr {
			r.Header[k] = v
		}
		if got := clientAddr(r, trusted).String(); got != c.want {
			t.Errorf("peer %s %v: %s, want %s", c.peer, c.hdr, got, c.want)
		}
	}
	for in, want := range map[string]string{
		"192.0.2.1": "192.0.2.1", "2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64", "fe80::1%eth0": "fe80::/64", "": "?",
	} {
		a, _ := netip.ParseAddr(in)
		if got := limitKey(a); got != want {
			t.Errorf("limitKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzClientAddr: whatever the forwarding headers hold, the client is an
// address: the peer's, or one the headers name.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"", "192.0.2.1", "192.0.2.1, 10.0.0.2", `for="[2001:db8::1]:80"`, "for=_hidden;by=x", "[", "::ffff:1.2.3.4", ",,,", `for=""`} {
		f.Add(s, s)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.1:1234"
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("Forwarded", fwd)
		a := clientAddr(r, trusted)
		if !a.IsValid() {
			t.Fatalf("no address for X-Forwarded-For %q, Forwarded %q", xff, fwd)
		}
		if a.String() != "10.0.0.1" && !strings.ContainsAny(xff+fwd, "0123456789") {
			t.Fatalf("address %s named by neither the peer nor the headers %q %q", a, xff, fwd)
		}
		limitKey(a)
	})
}
