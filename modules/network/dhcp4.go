package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// requested are the options the node asks its DHCP server for.
var requested = dhcpv4.WithRequestedOptions(
	dhcpv4.OptionSubnetMask,
	dhcpv4.OptionRouter,
	dhcpv4.OptionDomainNameServer,
	dhcpv4.OptionDomainName,
	dhcpv4.OptionDNSDomainSearchList,
	dhcpv4.OptionNTPServers,
	dhcpv4.OptionInterfaceMTU,
	dhcpv4.OptionIPAddressLeaseTime,
	dhcpv4.OptionRenewTimeValue,
	dhcpv4.OptionRebindingTimeValue,
)

// runDHCP finds a NIC that gets a lease, holds the lease for as long as the
// server renews it, and starts over when it is lost. It never gives up.
func (m *manager) runDHCP(ctx context.Context) error {
	wait := retries()
	for ctx.Err() == nil {
		link, lease, err := m.discover(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			wait := wait.Next()
			m.log.Error("no network yet; trying again", "in", wait.String(), "err", err)
			backoff.Sleep(ctx, wait)
			continue
		}
		wait.Reset()
		m.hold(ctx, link, lease)
	}
	return nil
}

// discover tries each candidate NIC in turn and returns the first that gets a
// lease. The error sums up what went wrong on each.
func (m *manager) discover(ctx context.Context) (netlink.Link, *nclient4.Lease, error) {
	links, err := m.candidates()
	if err != nil {
		m.update(func(_ *fact.Network, s *fact.NetworkStatus) {
			s.State, s.Error, s.NICs = fact.NetSearching, err.Error(), nil
		})
		return nil, nil, err
	}
	up := m.waitCarrier(ctx, links, carrierWait)
	var nics []fact.NICProblem
	var problems []error
	for _, l := range links {
		name, mac := l.Attrs().Name, l.Attrs().HardwareAddr.String()
		nic := fact.NICProblem{Name: name, MAC: mac}
		if !up[name] {
			nic.Problem = "no carrier — is the cable plugged in?"
		} else {
			lease, err := m.request(ctx, name)
			if err == nil {
				return l, lease, nil
			}
			nic.Problem = err.Error()
		}
		m.log.Warn(fmt.Sprintf("%s (%s): %s", name, mac, nic.Problem))
		nics = append(nics, nic)
		problems = append(problems, fmt.Errorf("%s: %s", name, nic.Problem))
	}
	err = errors.Join(problems...)
	m.update(func(_ *fact.Network, s *fact.NetworkStatus) {
		s.State, s.Error, s.NICs = fact.NetSearching, err.Error(), nics
	})
	return nil, nil, err
}

// request runs DISCOVER/OFFER/REQUEST/ACK on iface.
func (m *manager) request(ctx context.Context, iface string) (*nclient4.Lease, error) {
	c, err := nclient4.New(iface, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(int(offerWait/(2*time.Second))))
	if err != nil {
		return nil, fmt.Errorf("cannot open a DHCP socket: %v", err)
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, offerWait)
	defer cancel()
	offer, err := c.DiscoverOffer(cctx, requested)
	if err != nil {
		return nil, fmt.Errorf("no DHCP offer after %s", offerWait)
	}
	lease, err := c.RequestFromOffer(cctx, offer, requested)
	if err != nil {
		return nil, fmt.Errorf("DHCP server %s offered %s but did not confirm it: %v", offer.ServerIdentifier(), offer.YourIPAddr, err)
	}
	return lease, nil
}

// leaseTimes returns when to renew (T1), rebind (T2) and when the lease
// expires, or ok=false for an infinite lease.
func leaseTimes(l *nclient4.Lease) (t1, t2, exp time.Time, ok bool) {
	d := l.ACK.IPAddressLeaseTime(0)
	if d <= 0 || d >= 0xffffffff*time.Second {
		return t1, t2, exp, false
	}
	r1 := l.ACK.IPAddressRenewalTime(d / 2)
	r2 := l.ACK.IPAddressRebindingTime(d * 7 / 8)
	if r1 <= 0 || r1 > d {
		r1 = d / 2
	}
	if r2 <= r1 || r2 > d {
		r2 = d * 7 / 8
	}
	at := l.CreationTime
	return at.Add(r1), at.Add(r2), at.Add(d), true
}

// leaseConfig is what a lease asks the interface to be, and the domain
// and search values refused (searchDomains), quoted for a log line.
func leaseConfig(l *nclient4.Lease) (ifconfig, []string) {
	ack := l.ACK
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ack.YourIPAddr.DefaultMask()
	}
	c := ifconfig{addr: &net.IPNet{IP: ack.YourIPAddr, Mask: mask}, dns: ack.DNS()}
	if r := ack.Router(); len(r) > 0 {
		c.gateway = r[0]
	}
	if b := ack.Options.Get(dhcpv4.OptionInterfaceMTU); len(b) == 2 {
		c.mtu = int(b[0])<<8 | int(b[1])
	}
	var search []string
	if d := ack.DomainName(); d != "" {
		search = append(search, d)
	}
	if s := ack.DomainSearch(); s != nil {
		search = append(search, s.Labels...)
	}
	var refused []string
	c.search, refused = searchDomains(search)
	if _, _, exp, ok := leaseTimes(l); ok {
		c.life = time.Until(exp)
	}
	return c, refused
}

var errExpired = errors.New("lease expired")

// hold applies the lease and keeps it: RENEWING from T1 (unicast to the
// server), REBINDING from T2 (broadcast to any server), and at expiry drops
// the address and returns, so that discovery starts over.
func (m *manager) hold(ctx context.Context, link netlink.Link, lease *nclient4.Lease) {
	name, mac := link.Attrs().Name, link.Attrs().HardwareAddr.String()
	renewals := 0
	for {
		c, refused := leaseConfig(lease)
		if len(refused) > 0 {
			m.log.Warn(fmt.Sprintf("DHCP server %s sent domain or search values that are left out of %s: %s", lease.ACK.ServerIdentifier(), resolvConfPath, strings.Join(refused, ", ")), "iface", name)
		}
		if err := m.apply(link, c); err != nil {
			m.log.Error("could not apply the DHCP lease", "iface", name, "err", err)
			m.drop(link)
			return
		}
		t1, t2, exp, finite := leaseTimes(lease)
		server := lease.ACK.ServerIdentifier()
		if renewals == 0 {
			m.log.Info("DHCP lease obtained", "iface", name, "addr", c.addr, "gateway", c.gateway, "dns", c.dns, "server", server, "expires", exp.Format(time.RFC3339))
		} else {
			m.log.Debug("DHCP lease renewed", "iface", name, "addr", c.addr, "expires", exp.Format(time.RFC3339))
		}
		m.mu.Lock()
		m.ntpExtra = ipStrings(lease.ACK.NTPServers())
		m.mu.Unlock()
		n := renewals
		m.update(func(f *fact.Network, s *fact.NetworkStatus) {
			*f = fact.Network{Iface: name, MAC: mac, Mode: "dhcp", DNS: ipStrings(c.dns), MTU: link.Attrs().MTU, Clock: f.Clock,
				Lease: &fact.Lease{Server: server.String(), Obtained: lease.CreationTime.UTC(), Renewals: n}}
			if c.mtu > 0 {
				f.MTU = c.mtu
			}
			if finite {
				f.Lease.Expires = exp.UTC()
			}
			if c.gateway != nil {
				f.Gateway = c.gateway.String()
			}
			s.State, s.Error, s.NICs = fact.NetUp, "", []fact.NICProblem{{Name: name, MAC: mac}}
		})
		m.startClock(ctx)
		m.startDHCPv6(ctx, name)
		if !finite {
			<-ctx.Done()
			return
		}
		if backoff.Sleep(ctx, time.Until(t1)) != nil {
			return
		}
		next, err := m.renew(ctx, name, lease, t2, true)
		if err != nil && !isNak(err) && ctx.Err() == nil {
			m.log.Warn("DHCP server did not renew the lease; asking any server", "iface", name, "server", server)
			next, err = m.renew(ctx, name, lease, exp, false)
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			lease = next
			renewals++
			continue
		}
		why := fmt.Sprintf("%s: DHCP lease %s from %s expired without renewal; looking for a new one", name, c.addr, server)
		if isNak(err) {
			why = fmt.Sprintf("%s: DHCP server %s refused to renew %s; looking for a new lease", name, server, c.addr)
		}
		m.log.Error(why)
		m.drop(link)
		m.update(func(f *fact.Network, s *fact.NetworkStatus) {
			f.Lease, f.Gateway, f.Error = nil, "", why
			s.State, s.Error = fact.NetLost, why
		})
		return
	}
}

func isNak(err error) bool {
	var nak *nclient4.ErrNak
	return errors.As(err, &nak)
}

// renew asks for the lease to be extended until the deadline: unicast to the
// server that gave it (RENEWING) or broadcast (REBINDING). Retries are spaced
// at half the remaining time (RFC 2131 4.4.5), at most a minute apart.
func (m *manager) renew(ctx context.Context, iface string, lease *nclient4.Lease, until time.Time, unicast bool) (*nclient4.Lease, error) {
	for time.Now().Before(until) {
		opts := []nclient4.ClientOpt{nclient4.WithTimeout(time.Second), nclient4.WithRetry(2)}
		if unicast && lease.ACK.ServerIdentifier() != nil {
			opts = append(opts,
				nclient4.WithUnicast(&net.UDPAddr{IP: lease.ACK.YourIPAddr, Port: nclient4.ClientPort}),
				nclient4.WithServerAddr(&net.UDPAddr{IP: lease.ACK.ServerIdentifier(), Port: nclient4.ServerPort}))
		}
		c, err := nclient4.New(iface, opts...)
		if err == nil {
			actx, cancel := context.WithDeadline(ctx, until)
			var next *nclient4.Lease
			next, err = c.Renew(actx, lease, requested)
			cancel()
			c.Close()
			if err == nil || isNak(err) {
				return next, err
			}
		}
		m.log.Debug("DHCP renewal attempt failed", "iface", iface, "unicast", unicast, "err", err)
		wait := min(max(time.Until(until)/2, 500*time.Millisecond), time.Minute)
		if backoff.Sleep(ctx, wait) != nil {
			return nil, ctx.Err()
		}
	}
	return nil, errExpired
}
