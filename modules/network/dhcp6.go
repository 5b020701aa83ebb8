package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/vishvananda/netlink"
)

// startDHCPv6 tries DHCPv6 on iface in the background, once per run. IPv6 is
// a bonus: readiness never waits on it. SLAAC needs nothing from us (the
// kernel does it); its addresses show up in the fact through watchAddrs.
func (m *manager) startDHCPv6(ctx context.Context, iface string) {
	m.v6Once.Do(func() {
		go func() {
			wait := backoff.Counter{Policy: backoff.Policy{Base: 10 * time.Second, Max: dhcp6Retries}}
			said, tentative := false, 0
			for {
				next, err := m.dhcpv6(ctx, iface)
				if ctx.Err() != nil {
					return
				}
				var serr socketError
				if errors.As(err, &serr) && tentative < 15 {
					tentative++
					// The link-local address is still tentative (duplicate
					// address detection takes a second or two): not a failure.
					m.log.Debug("DHCPv6 not possible yet", "iface", iface, "err", err)
					if backoff.Sleep(ctx, 2*time.Second) != nil {
						return
					}
					continue
				}
				if err != nil {
					if !said {
						m.log.Info("no DHCPv6 address (IPv6 only through router advertisements, if any)", "iface", iface, "err", err)
						said = true
					}
					next = wait.Next()
				}
				if backoff.Sleep(ctx, next) != nil {
					return
				}
			}
		}()
	})
}

// dhcpv6 asks for an address (rapid commit, else solicit/request), adds it
// with the lifetimes given, and returns when to ask again. Asking again with
// a new solicit at T1 gets the same address from any sane server.
func (m *manager) dhcpv6(ctx context.Context, iface string) (time.Duration, error) {
	c, err := nclient6.New(iface, nclient6.WithTimeout(2*time.Second), nclient6.WithRetry(2))
	if err != nil {
		return 0, socketError{err}
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	reply, err := c.RapidSolicit(cctx)
	if err != nil {
		return 0, fmt.Errorf("no DHCPv6 server answered: %w", err)
	}
	iana := reply.Options.OneIANA()
	if iana == nil || iana.Options.OneAddress() == nil {
		return 0, errors.New("the DHCPv6 server offered no address")
	}
	a := iana.Options.OneAddress()
	link, err := m.h.LinkByName(iface)
	if err != nil {
		return 0, err
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.IPv6Addr, Mask: net.CIDRMask(128, 128)},
		ValidLft: int(a.ValidLifetime / time.Second), PreferedLft: int(a.PreferredLifetime / time.Second)}
	if err := m.h.AddrReplace(link, addr); err != nil {
		return 0, fmt.Errorf("adding DHCPv6 address %s: %w", a.IPv6Addr, err)
	}
	m.log.Info("DHCPv6 address obtained", "iface", iface, "addr", a.IPv6Addr, "valid", a.ValidLifetime)
	m.update(func(*fact.Network, *fact.NetworkStatus) {})
	t1 := iana.T1
	if t1 <= 0 {
		t1 = a.PreferredLifetime / 2
	}
	return max(t1, 30*time.Second), nil
}

type socketError struct{ err error }

func (e socketError) Error() string { return "DHCPv6 socket: " + e.err.Error() }
