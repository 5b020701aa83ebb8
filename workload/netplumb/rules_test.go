package netplumb

import (
	"net/netip"
	"strings"
	"testing"
)

func testState() State {
	return State{
		Bridge: "gn-wl0", Subnet: netip.MustParsePrefix("10.249.0.0/16"), Gateway: netip.MustParseAddr("10.249.0.1"),
		LAN:       []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, // a LAN on public addresses
		Resolvers: []netip.Addr{netip.MustParseAddr("fd00::53"), netip.MustParseAddr("192.168.1.1")},
		Ports:     []Published{{Proto: "tcp", NodePort: 8080, To: netip.MustParseAddrPort("10.249.0.2:80")}},
	}
}

// index returns the position of the rule printed as want, or -1.
func index(rules []Rule, chain, want string) int {
	for i, r := range rules {
		if r.Chain == chain && r.String() == want {
			return i
		}
	}
	return -1
}

func TestRuleSet(t *testing.T) {
	rules := Rules(testState())
	var listing strings.Builder
	for _, r := range rules {
		listing.WriteString(r.Chain + ": " + r.String() + "\n")
		if _, err := r.exprs(); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
	t.Logf("rule set:\n%s", listing.String())
	must := func(chain, want string) int {
		t.Helper()
		i := index(rules, chain, want)
		if i < 0 {
			t.Errorf("chain %s lacks %q", chain, want)
		}
		return i
	}
	internet := must("forward", `iifname "gn-wl0" accept`)
	// Every private, shared and link-local range, and the LAN even on
	// public addresses, is dropped before the internet is accepted.
	for _, p := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
		"169.254.0.0/16", "127.0.0.0/8", "198.51.100.0/24"} {
		if i := must("forward", `iifname "gn-wl0" ip daddr `+p+` drop`); i > internet {
			t.Errorf("%s is dropped after the internet is accepted", p)
		}
	}
	for _, p := range []string{"fc00::/7", "fe80::/10"} {
		if i := must("forward", `iifname "gn-wl0" ip6 daddr `+p+` drop`); i > internet {
			t.Errorf("%s is dropped after the internet is accepted", p)
		}
	}
	// DNS goes to the node's IPv4 resolver only through the bridge
	// address, and that exception precedes the LAN drop.
	must("prerouting", `iifname "gn-wl0" ip daddr 10.249.0.1 udp dport 53 meta nfproto ipv4 dnat ip to 192.168.1.1:53`)
	must("prerouting", `iifname "gn-wl0" ip daddr 10.249.0.1 tcp dport 53 meta nfproto ipv4 dnat ip to 192.168.1.1:53`)
	dns := must("forward", `iifname "gn-wl0" ip daddr 192.168.1.1 udp dport 53 ct status dnat accept`)
	if lan := index(rules, "forward", `iifname "gn-wl0" ip daddr 192.168.0.0/16 drop`); dns > lan {
		t.Error("the DNS exception comes after the LAN drop: DNS would be dropped")
	}
	// Deployments never reach one another, before any accept.
	if i := must("forward", `iifname "gn-wl0" oifname "gn-wl0" drop`); i > dns {
		t.Error("bridge-to-bridge traffic is dropped after an accept")
	}
	// The node's services are closed to workloads.
	must("input", `iifname "gn-wl0" drop`)
	// Published ports, from the LAN and from the node itself.
	must("prerouting", `fib daddr type local tcp dport 8080 meta nfproto ipv4 dnat ip to 10.249.0.2:80`)
	must("output", `fib daddr type local tcp dport 8080 meta nfproto ipv4 dnat ip to 10.249.0.2:80`)
	must("forward", `oifname "gn-wl0" ct status dnat accept`)
	must("postrouting", `oifname != "gn-wl0" ip saddr 10.249.0.0/16 masquerade`)
	for _, c := range chains {
		if c.Name == "forward" && !c.Drop {
			t.Error("forward's policy accepts: the node would route for anyone")
		}
	}
}

// Without an IPv4 resolver there is no DNS hole at all.
func TestRuleSetWithoutResolver(t *testing.T) {
	s := testState()
	s.Resolvers = nil
	for _, r := range Rules(s) {
		if r.Dport == 53 {
			t.Errorf("rule %q without a resolver", r)
		}
	}
}

func TestBadRules(t *testing.T) {
	for _, r := range []Rule{
		{Chain: "forward", Proto: "sctp", Verdict: "accept"},
		{Chain: "forward", Verdict: "reject"},
		{Chain: "forward", CtState: "new", Verdict: "accept"},
		{Chain: "prerouting", Verdict: "dnat", DNAT: netip.MustParseAddrPort("[fd00::1]:80")},
	} {
		if _, err := r.exprs(); err == nil {
			t.Errorf("%+v compiled", r)
		}
	}
}
