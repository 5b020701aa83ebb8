package netplumb

import (
	"fmt"
	"net/netip"
	"strings"
)

// Rule is one nftables rule of the workload table, in a form small enough to
// read and test without a kernel: every field set is a match, Verdict what
// a matching packet gets. String prints it as nft(8) lists it.
type Rule struct {
	Chain        string
	IIf, OIf     string // interface names
	NotOIf       bool   // OIf must not match
	CtState      string // "established,related" or "invalid"
	Proto        string // "tcp" or "udp"
	Saddr, Daddr netip.Prefix
	Dport        uint16
	CtDNAT       bool // the connection was destination-NATed
	LocalDaddr   bool // the destination is an address of the node (fib)
	Verdict      string
	DNAT         netip.AddrPort // with Verdict "dnat"
}

// Chains of the table, with their hook and priority.
var chains = []struct {
	Name, Type, Hook string
	Priority         int
	Drop             bool // policy drop
}{
	{"prerouting", "nat", "prerouting", -100, false},
	{"output", "nat", "output", -100, false},
	{"postrouting", "nat", "postrouting", 100, false},
	{"input", "filter", "input", 0, false},
	// The node routes only for its workloads.
	{"forward", "filter", "forward", 0, true},
}

// Blocked are the destinations no workload reaches: private, shared
// (CGNAT), link-local (cloud metadata), loopback, multicast and reserved
// ranges. The management network's own prefixes are added to these.
var Blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/3"), // multicast, reserved, broadcast
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),  // unique local
	netip.MustParsePrefix("fe80::/10"), // link-local
	netip.MustParsePrefix("ff00::/8"),  // multicast
}

// State is what the rule set is made from.
type State struct {
	Bridge    string
	Subnet    netip.Prefix
	Gateway   netip.Addr
	LAN       []netip.Prefix // the management network's prefixes
	Resolvers []netip.Addr   // the node's DNS servers
	Ports     []Published
}

// Published is a port of the node forwarded to a workload.
type Published struct {
	Proto    string // tcp or udp
	NodePort uint16
	To       netip.AddrPort
}

// Rules returns the whole rule set, in order, chain by chain.
func Rules(s State) []Rule {
	var r []Rule
	br := s.Bridge
	// DNS: the container's resolver is the bridge address, forwarded to
	// the node's first IPv4 resolver, and nothing else of the LAN.
	dns, hasDNS := firstV4(s.Resolvers)
	for _, p := range []string{"udp", "tcp"} {
		if hasDNS {
			r = append(r, Rule{Chain: "prerouting", IIf: br, Proto: p, Daddr: host(s.Gateway), Dport: 53,
				Verdict: "dnat", DNAT: netip.AddrPortFrom(dns, 53)})
		}
	}
	for _, c := range []string{"prerouting", "output"} {
		for _, p := range s.Ports {
			r = append(r, Rule{Chain: c, LocalDaddr: true, Proto: p.Proto, Dport: p.NodePort, Verdict: "dnat", DNAT: p.To})
		}
	}
	r = append(r, Rule{Chain: "postrouting", Saddr: s.Subnet, OIf: br, NotOIf: true, Verdict: "masquerade"})

	// The node's own services are closed to workloads.
	r = append(r,
		Rule{Chain: "input", IIf: br, CtState: "established,related", Verdict: "accept"},
		Rule{Chain: "input", IIf: br, Verdict: "drop"},
	)

	r = append(r,
		Rule{Chain: "forward", CtState: "established,related", Verdict: "accept"},
		Rule{Chain: "forward", CtState: "invalid", Verdict: "drop"},
		// No deployment reaches another, of the same owner or not.
		Rule{Chain: "forward", IIf: br, OIf: br, Verdict: "drop"},
	)
	if hasDNS {
		for _, p := range []string{"udp", "tcp"} {
			r = append(r, Rule{Chain: "forward", IIf: br, Proto: p, Daddr: host(dns), Dport: 53, CtDNAT: true, Verdict: "accept"})
		}
	}
	for _, p := range append(append([]netip.Prefix(nil), Blocked...), s.LAN...) {
		r = append(r, Rule{Chain: "forward", IIf: br, Daddr: p.Masked(), Verdict: "drop"})
	}
	r = append(r,
		Rule{Chain: "forward", IIf: br, Verdict: "accept"},               // the internet
		Rule{Chain: "forward", OIf: br, CtDNAT: true, Verdict: "accept"}, // published ports
	)
	return r
}

func host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

func firstV4(l []netip.Addr) (netip.Addr, bool) {
	for _, a := range l {
		if a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// String prints the rule in nft(8) syntax.
func (r Rule) String() string {
	var w []string
	if r.IIf != "" {
		w = append(w, fmt.Sprintf("iifname %q", r.IIf))
	}
	if r.OIf != "" {
		op := ""
		if r.NotOIf {
			op = "!= "
		}
		w = append(w, fmt.Sprintf("oifname %s%q", op, r.OIf))
	}
	if r.CtState != "" {
		w = append(w, "ct state "+r.CtState)
	}
	if r.LocalDaddr {
		w = append(w, "fib daddr type local")
	}
	fam := func(p netip.Prefix) string {
		if p.Addr().Is4() {
			return "ip"
		}
		return "ip6"
	}
	pfx := func(p netip.Prefix) string {
		if p.IsSingleIP() {
			return p.Addr().String()
		}
		return p.String()
	}
	if r.Saddr.IsValid() {
		w = append(w, fam(r.Saddr)+" saddr "+pfx(r.Saddr))
	}
	if r.Daddr.IsValid() {
		w = append(w, fam(r.Daddr)+" daddr "+pfx(r.Daddr))
	}
	if r.Proto != "" {
		if r.Dport != 0 {
			w = append(w, fmt.Sprintf("%s dport %d", r.Proto, r.Dport))
		} else {
			w = append(w, "meta l4proto "+r.Proto)
		}
	}
	if r.CtDNAT {
		w = append(w, "ct status dnat")
	}
	if r.Verdict == "dnat" {
		w = append(w, "meta nfproto ipv4 dnat ip to "+r.DNAT.String())
	} else {
		w = append(w, r.Verdict)
	}
	return strings.Join(w, " ")
}
