// Package network brings up the node's management network: it picks the NIC,
// gets an address by DHCPv4 (renewing and rebinding for as long as the node
// runs) or from a static configuration, writes /etc/resolv.conf, tries DHCPv6
// in the background, and sets the system clock (NTP, else the registrar's
// HTTP Date header). It remembers nothing across boots.
//
// Facts published:
//
// network (written once the NIC has an address — that is readiness — and on
// every change afterwards; if the lease is lost, addresses is empty and error
// says why):
//
//	{"iface": "eth0", "mac": "52:54:00:12:34:56", "mode": "dhcp|static",
//	 "addresses": ["10.0.2.15/24", "fec0::5054:ff:fe12:3456/64"],
//	 "gateway": "10.0.2.2", "dns": ["10.0.2.3"], "mtu": 1500,
//	 "lease": {"server": "10.0.2.2", "obtained": T, "expires": T, "renewals": 0},
//	 "clock": {"source": "ntp|registrar|none", "server": "...", "offset_ms": 12, "synced_at": T, "error": "..."},
//	 "error": "..."}
//
// network-status (written always, from the first attempt on, so the console
// can say what is going on before there is an address):
//
//	{"state": "searching|configuring|up|lost", "iface": "eth0", "error": "...",
//	 "nics": [{"name": "eth0", "mac": "...", "problem": "no carrier — is the cable plugged in?"}],
//	 "updated": T}
package network

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Settings the tests replace; production uses these defaults.
var (
	resolvConfPath = "/etc/resolv.conf"
	setClock       = setSystemClock
	sysClassNet    = "/sys/class/net"
)

// Timing. Variables so that the tests can shorten them.
var (
	carrierWait  = 5 * time.Second  // how long to wait for carrier after link up
	offerWait    = 10 * time.Second // how long to wait for a DHCP offer on one NIC
	backoffCap   = 30 * time.Second // longest pause between rounds of attempts
	clockEvery   = 30 * time.Minute // clock re-sync period
	addrRefresh  = 10 * time.Second // how often addresses are re-read (SLAAC, DHCPv6)
	ntpTimeout   = 2 * time.Second
	httpTimeout  = 5 * time.Second
	defaultNTP   = []string{"pool.ntp.org"}
	dhcp6Retries = 30 * time.Minute // longest pause between DHCPv6 attempts
)

// Run brings the network up and keeps it up until ctx is done.
func Run(ctx context.Context, cfg config.Node, log *slog.Logger) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("network: netlink: %w", err)
	}
	defer h.Close()
	noWaitForEntropy()
	m := &manager{cfg: cfg, log: log, h: h}
	return m.run(ctx)
}

type manager struct {
	cfg config.Node
	log *slog.Logger
	h   *netlink.Handle

	mu        sync.Mutex
	fact      fact.Network
	status    fact.NetworkStatus
	ready     bool   // network has been written once
	lastFact  []byte // last JSON written, to skip identical rewrites
	lastState []byte
	ntpExtra  []string // NTP servers learnt from DHCP
	clockOnce sync.Once
	v6Once    sync.Once
}

func (m *manager) run(ctx context.Context) error {
	if lo, err := m.h.LinkByName("lo"); err == nil {
		if err := m.h.LinkSetUp(lo); err != nil {
			m.log.Warn("could not bring the loopback interface up", "err", err)
		}
	}
	go m.watchAddrs(ctx)
	if st := m.cfg.Network; len(st) > 7 && st[:7] == "static:" {
		return m.runStatic(ctx)
	}
	return m.runDHCP(ctx)
}

// update changes the facts under the lock and publishes what changed.
func (m *manager) update(fn func(f *fact.Network, s *fact.NetworkStatus)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(&m.fact, &m.status)
	m.status.Iface = m.fact.Iface
	if m.fact.Iface != "" {
		m.fact.Addresses = m.addresses(m.fact.Iface)
	}
	if len(m.fact.Addresses) > 0 {
		m.ready = true
	}
	if m.ready {
		if b, _ := json.Marshal(m.fact); string(b) != string(m.lastFact) {
			if err := fact.Write(fact.NameNetwork, m.fact); err != nil {
				m.log.Error("could not publish the network fact", "err", err)
			} else {
				m.lastFact = b
			}
		}
	}
	s := m.status
	s.Updated = time.Time{}
	if b, _ := json.Marshal(s); string(b) != string(m.lastState) {
		m.status.Updated = time.Now().UTC()
		if err := fact.Write(fact.NameNetworkStatus, m.status); err != nil {
			m.log.Error("could not publish the network-status fact", "err", err)
		} else {
			m.lastState = b
		}
	}
}

// addresses lists the global addresses of iface as ADDR/PREFIX, IPv4 first.
func (m *manager) addresses(iface string) []string {
	l := []string{}
	link, err := m.h.LinkByName(iface)
	if err != nil {
		return l
	}
	addrs, err := m.h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return l
	}
	var v6 []string
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() || a.IP.IsLoopback() {
			continue
		}
		if a.IP.To4() != nil {
			l = append(l, a.IPNet.String())
		} else {
			v6 = append(v6, a.IPNet.String())
		}
	}
	return append(l, v6...)
}

// watchAddrs republishes when the kernel's addresses change (SLAAC, DHCPv6,
// an expired lifetime).
func (m *manager) watchAddrs(ctx context.Context) {
	t := time.NewTicker(addrRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.update(func(*fact.Network, *fact.NetworkStatus) {})
		}
	}
}

// startClock starts the clock synchroniser once the network has an address.
func (m *manager) startClock(ctx context.Context) {
	m.clockOnce.Do(func() {
		go func() {
			retry := backoff.Counter{Policy: backoff.Policy{Base: 15 * time.Second, Max: clockEvery}}
			for {
				m.mu.Lock()
				servers := slices.Clone(m.cfg.NTP)
				if len(servers) == 0 {
					servers = slices.Clone(defaultNTP)
				}
				servers = append(servers, m.ntpExtra...)
				m.mu.Unlock()
				c := syncClock(ctx, servers, m.cfg.RegistrarURL(), setClock)
				if c.Error != "" {
					m.log.Warn("clock not synchronised", "err", c.Error)
				} else {
					m.log.Info("clock synchronised", "source", c.Source, "server", c.Server, "offset_ms", c.OffsetMS)
				}
				m.update(func(f *fact.Network, _ *fact.NetworkStatus) { f.Clock = c })
				next := clockEvery
				if c.Source == "none" || c.Error != "" {
					// No time source yet (the registrar may come up later):
					// try again soon, backing off to the normal period.
					next = retry.Next()
				} else {
					retry.Reset()
				}
				if backoff.Sleep(ctx, next) != nil {
					return
				}
			}
		}()
	})
}

// retries is the schedule between rounds of attempts to get a lease or
// apply a static address: 1 s, doubling, at most backoffCap.
func retries() *backoff.Counter {
	return &backoff.Counter{Policy: backoff.Policy{Base: time.Second, Max: backoffCap}}
}

func ipStrings(ips []net.IP) []string {
	l := []string{}
	for _, ip := range ips {
		l = append(l, ip.String())
	}
	return l
}
