package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// physicalNICs lists the interfaces backed by a device (a PCI or USB NIC,
// virtio): those with sysfs's "device" link. Loopback, bridges, veth, tun and
// other virtual interfaces have none. Sorted by name, for a stable order.
func physicalNICs() ([]string, error) {
	ents, err := os.ReadDir(sysClassNet)
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces in %s: %w", sysClassNet, err)
	}
	var l []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(sysClassNet, e.Name(), "device")); err == nil {
			l = append(l, e.Name())
		}
	}
	sort.Strings(l)
	return l, nil
}

// findLink resolves a NIC given by name or MAC address.
func (m *manager) findLink(nameOrMAC string) (netlink.Link, error) {
	if mac, err := net.ParseMAC(nameOrMAC); err == nil {
		links, err := m.h.LinkList()
		if err != nil {
			return nil, fmt.Errorf("listing links: %w", err)
		}
		for _, l := range links {
			if strings.EqualFold(l.Attrs().HardwareAddr.String(), mac.String()) {
				return l, nil
			}
		}
		return nil, fmt.Errorf("no network interface has MAC %s; check gridnode.net.iface / gridnode.net", nameOrMAC)
	}
	l, err := m.h.LinkByName(nameOrMAC)
	if err != nil {
		return nil, fmt.Errorf("network interface %q not found (%v); check gridnode.net.iface / gridnode.net", nameOrMAC, err)
	}
	return l, nil
}

// candidates returns the NICs to try, in order: the forced one, or every
// physical NIC.
func (m *manager) candidates() ([]netlink.Link, error) {
	if m.cfg.Iface != "" {
		l, err := m.findLink(m.cfg.Iface)
		if err != nil {
			return nil, err
		}
		return []netlink.Link{l}, nil
	}
	names, err := physicalNICs()
	if err != nil {
		return nil, err
	}
	var links []netlink.Link
	for _, n := range names {
		l, err := m.h.LinkByName(n)
		if err != nil {
			continue
		}
		links = append(links, l)
	}
	if len(links) == 0 {
		return nil, errors.New("no physical network interface found: is the NIC's driver in the image? (see the hardware fact's nics)")
	}
	return links, nil
}

// hasCarrier re-reads the link and says whether its lower layer is up.
func (m *manager) hasCarrier(name string) bool {
	l, err := m.h.LinkByName(name)
	if err != nil {
		return false
	}
	a := l.Attrs()
	return a.RawFlags&unix.IFF_LOWER_UP != 0 || a.OperState == netlink.OperUp
}

// waitCarrier brings links up and waits until each has carrier or until the
// deadline; it returns which links have carrier.
func (m *manager) waitCarrier(ctx context.Context, links []netlink.Link, d time.Duration) map[string]bool {
	for _, l := range links {
		if err := m.h.LinkSetUp(l); err != nil {
			m.log.Warn("could not bring the interface up", "iface", l.Attrs().Name, "err", err)
		}
	}
	up := map[string]bool{}
	deadline := time.Now().Add(d)
	for {
		for _, l := range links {
			if m.hasCarrier(l.Attrs().Name) {
				up[l.Attrs().Name] = true
			}
		}
		if len(up) == len(links) || time.Now().After(deadline) {
			return up
		}
		if backoff.Sleep(ctx, 100*time.Millisecond) != nil {
			return up
		}
	}
}

// config is what an interface should get, from a lease or a static setting.
type ifconfig struct {
	addr    *net.IPNet
	gateway net.IP
	dns     []net.IP
	search  []string
	mtu     int
	life    time.Duration // address lifetime; 0 = forever
}

// apply configures link with c: the address (replacing other IPv4
// addresses), the MTU, the default route and /etc/resolv.conf.
func (m *manager) apply(link netlink.Link, c ifconfig) error {
	name := link.Attrs().Name
	if c.mtu >= 576 && c.mtu != link.Attrs().MTU {
		if err := m.h.LinkSetMTU(link, c.mtu); err != nil {
			m.log.Warn("could not set the MTU", "iface", name, "mtu", c.mtu, "err", err)
		}
	}
	old, _ := m.h.AddrList(link, netlink.FAMILY_V4)
	a := &netlink.Addr{IPNet: c.addr}
	if c.life > 0 {
		// The kernel drops the address by itself if we fail to renew.
		s := int(c.life / time.Second)
		a.ValidLft, a.PreferedLft = s, s
	}
	if err := m.h.AddrReplace(link, a); err != nil {
		return fmt.Errorf("adding %s to %s: %w", c.addr, name, err)
	}
	for _, o := range old {
		if !o.IP.Equal(c.addr.IP) {
			_ = m.h.AddrDel(link, &o)
		}
	}
	if c.gateway != nil {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: c.gateway, Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}
		if !c.addr.Contains(c.gateway) {
			// Leases like /32 in clouds: the gateway is reachable on the link.
			r.Flags = int(netlink.FLAG_ONLINK)
		}
		if err := m.h.RouteReplace(r); err != nil {
			return fmt.Errorf("default route via %s on %s: %w", c.gateway, name, err)
		}
	}
	if len(c.dns) > 0 {
		if err := writeResolvConf(c.dns, c.search); err != nil {
			m.log.Error("could not write "+resolvConfPath, "err", err)
		}
	}
	return nil
}

// drop removes the IPv4 addresses of link (the lease expired).
func (m *manager) drop(link netlink.Link) {
	addrs, _ := m.h.AddrList(link, netlink.FAMILY_V4)
	for _, a := range addrs {
		if err := m.h.AddrDel(link, &a); err != nil {
			m.log.Warn("could not remove address", "iface", link.Attrs().Name, "addr", a.IPNet, "err", err)
		}
	}
}

// parseStatic turns the static setting into an ifconfig.
func parseStatic(s string) (string, ifconfig, error) {
	st, err := config.ParseStatic(s)
	if err != nil {
		return "", ifconfig{}, err
	}
	ip, ipnet, err := net.ParseCIDR(st.Addr)
	if err != nil {
		return "", ifconfig{}, fmt.Errorf("network %q: address %q: want ADDR/PREFIX like 192.168.1.10/24", s, st.Addr)
	}
	ipnet.IP = ip
	c := ifconfig{addr: ipnet}
	if st.Gateway != "" {
		if c.gateway = net.ParseIP(st.Gateway); c.gateway == nil {
			return "", ifconfig{}, fmt.Errorf("network %q: gateway %q is not an IP address", s, st.Gateway)
		}
	}
	for _, d := range st.DNS {
		ip := net.ParseIP(d)
		if ip == nil {
			return "", ifconfig{}, fmt.Errorf("network %q: DNS server %q is not an IP address", s, d)
		}
		c.dns = append(c.dns, ip)
	}
	return st.Iface, c, nil
}

// runStatic applies the static configuration, retrying until the NIC shows
// up, then keeps the clock and the facts current.
func (m *manager) runStatic(ctx context.Context) error {
	iface, c, err := parseStatic(m.cfg.Network)
	if err != nil {
		// A configuration error does not heal by retrying: say it and wait.
		m.log.Error("static network configuration is invalid", "err", err)
		m.update(func(_ *fact.Network, s *fact.NetworkStatus) { s.State, s.Error = fact.NetConfiguring, err.Error() })
		<-ctx.Done()
		return nil
	}
	wait := retries()
	for {
		err := m.applyStatic(ctx, iface, c)
		if err == nil {
			break
		}
		m.log.Error("static network configuration failed", "err", err)
		m.update(func(_ *fact.Network, s *fact.NetworkStatus) { s.State, s.Error = fact.NetConfiguring, err.Error() })
		if backoff.Sleep(ctx, wait.Next()) != nil {
			return nil
		}
	}
	<-ctx.Done()
	return nil
}

func (m *manager) applyStatic(ctx context.Context, iface string, c ifconfig) error {
	link, err := m.findLink(iface)
	if err != nil {
		return err
	}
	name, mac := link.Attrs().Name, link.Attrs().HardwareAddr.String()
	var problem string
	if up := m.waitCarrier(ctx, []netlink.Link{link}, carrierWait); !up[name] {
		problem = fmt.Sprintf("%s (%s): no carrier — is the cable plugged in?", name, mac)
		m.log.Warn(problem + " (configuring it anyway)")
	}
	if err := m.apply(link, c); err != nil {
		return err
	}
	m.log.Info("static network configured", "iface", name, "addr", c.addr, "gateway", c.gateway, "dns", c.dns)
	m.update(func(f *fact.Network, s *fact.NetworkStatus) {
		*f = fact.Network{Iface: name, MAC: mac, Mode: "static", DNS: ipStrings(c.dns), Clock: f.Clock}
		if c.gateway != nil {
			f.Gateway = c.gateway.String()
		}
		s.State, s.Error = fact.NetUp, ""
		s.NICs = []fact.NICProblem{{Name: name, MAC: mac, Problem: problem}}
	})
	m.startClock(ctx)
	return nil
}
