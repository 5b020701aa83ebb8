package network

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

// FuzzLease: whatever a DHCP server sends, reading the lease does not
// panic, and the resolv.conf made of it has only its comment, one search
// line of domain names within the resolvers' limits, and nameserver lines
// of addresses.
func FuzzLease(f *testing.F) {
	ack := func(mods ...dhcpv4.Modifier) []byte {
		p, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(net.IPv4(10, 0, 2, 15))}, mods...)...)
		if err != nil {
			f.Fatal(err)
		}
		return p.ToBytes()
	}
	f.Add(ack(dhcpv4.WithNetmask(net.CIDRMask(24, 32)), dhcpv4.WithRouter(net.IPv4(10, 0, 2, 2)), dhcpv4.WithDNS(net.IPv4(10, 0, 2, 3)),
		dhcpv4.WithOption(dhcpv4.OptDomainName("farm.lan")), dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Hour))))
	f.Add(ack(dhcpv4.WithDNS(net.IPv4(10, 0, 2, 3)), dhcpv4.WithOption(dhcpv4.OptDomainName("a\noptions ndots:15\nnameserver 6.6.6.6")),
		dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"farm.lan", "x\ny", strings.Repeat("b.", 120) + "c"}}))))
	f.Add(ack(dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(-time.Second)), dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(0xffffffff*time.Second))))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		l := &nclient4.Lease{ACK: p, CreationTime: time.Unix(1_700_000_000, 0)}
		leaseTimes(l)
		c, _ := leaseConfig(l)
		text := resolvConf(c.dns, c.search)
		searches := 0
		for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
			switch {
			case line == "# written by gridnode's network module":
			case strings.HasPrefix(line, "search "):
				searches++
				d := strings.Fields(strings.TrimPrefix(line, "search "))
				if len(line) > maxSearchLine || len(d) > maxSearch {
					t.Fatalf("search line over the limits: %q", line)
				}
				for _, v := range d {
					if !isDomain(v) {
						t.Fatalf("search line with %q, not a domain name", v)
					}
				}
			case strings.HasPrefix(line, "nameserver "):
				if net.ParseIP(strings.TrimPrefix(line, "nameserver ")) == nil {
					t.Fatalf("nameserver line %q", line)
				}
			default:
				t.Fatalf("resolv.conf line %q came from the DHCP server", line)
			}
		}
		if searches > 1 {
			t.Fatalf("%d search lines", searches)
		}
	})
}

func TestSearchDomains(t *testing.T) {
	keep, refused := searchDomains([]string{"farm.lan", "Farm-1.example.", "_srv.example", "x\ny", "-bad.example", "a..b", "", strings.Repeat("a", 64) + ".com",
		"d1.x", "d2.x", "d3.x", "d4.x", "d5.x"})
	if want := "farm.lan Farm-1.example. _srv.example d1.x d2.x d3.x"; strings.Join(keep, " ") != want {
		t.Errorf("kept %q, want %q", keep, want)
	}
	if len(refused) != 7 || !strings.Contains(refused[0], `"x\\x0ay" (not a domain name)`) || !strings.Contains(refused[6], "more than 6 search domains") {
		t.Errorf("refused %q", refused)
	}
}
