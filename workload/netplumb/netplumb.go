// Package netplumb gives each deployment a network: a network namespace
// with one veth on the node's workload bridge, an address of its own, NAT
// to the management network, published ports forwarded from the node's
// addresses, and DNS, all through netlink and nftables (no ip or iptables
// binary). The rule set (Rules) lets a workload reach the internet and
// nothing else: not the farmer's LAN nor any private, shared or link-local
// range, not the node's own services, not another deployment.
//
// The deployment's namespace belongs to the node's user namespace, not the
// container's: root in a container cannot change its address or routes.
package netplumb

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/gridnode/gridnode/workload/slot"
)

// Config of the workload network.
type Config struct {
	Bridge string       // default "gn-wl0"
	Subnet netip.Prefix // default 10.249.0.0/16; the bridge has its first address
	// Dir holds the deployments' namespace files, resolv.conf files and
	// the address table (on the cache disk, so addresses survive reboots).
	Dir string
	// LAN are the management network's prefixes, blocked like private
	// ranges even when they are public addresses.
	LAN []netip.Prefix
	// Resolvers are the node's DNS servers.
	Resolvers []netip.Addr
}

// Defaults.
const (
	DefaultBridge = "gn-wl0"
	DefaultSubnet = "10.249.0.0/16"
)

// Plumber sets up the workload network in the node's network namespace.
type Plumber struct {
	cfg     Config
	node    netns.NsHandle
	gateway netip.Addr
	addrs   *slot.Table

	mu    sync.Mutex
	ports map[string][]Published // by deployment
}

// New returns a plumber for the network namespace node (the node's own;
// tests pass one they made).
func New(cfg Config, node netns.NsHandle) (*Plumber, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = netip.MustParsePrefix(DefaultSubnet)
	}
	if !cfg.Subnet.Addr().Is4() || cfg.Subnet.Bits() > 30 {
		return nil, fmt.Errorf("netplumb: workload subnet %s: an IPv4 prefix of /30 or wider", cfg.Subnet)
	}
	if cfg.Dir == "" {
		return nil, errors.New("netplumb: no folder for namespaces and the address table")
	}
	cfg.Subnet = cfg.Subnet.Masked()
	size := 1<<(32-cfg.Subnet.Bits()) - 3 // network, gateway, broadcast
	return &Plumber{
		cfg: cfg, node: node, gateway: cfg.Subnet.Addr().Next(),
		addrs: slot.Open(filepath.Join(cfg.Dir, "addresses.json"), size),
		ports: map[string][]Published{},
	}, nil
}

// Gateway is the bridge's address: the workloads' router and DNS server.
func (p *Plumber) Gateway() netip.Addr { return p.gateway }

// Setup brings up the bridge, turns on routing and loads the rule set. It
// may run again (after a module restart): what exists is kept.
func (p *Plumber) Setup() error {
	h, err := handle(p.node)
	if err != nil {
		return fmt.Errorf("netplumb: %w", err)
	}
	defer h.Close()
	br, err := h.LinkByName(p.cfg.Bridge)
	if err != nil {
		la := netlink.NewLinkAttrs()
		la.Name = p.cfg.Bridge
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
			return fmt.Errorf("netplumb: creating bridge %s: %w (is the bridge module loaded?)", p.cfg.Bridge, err)
		}
		if br, err = h.LinkByName(p.cfg.Bridge); err != nil {
			return fmt.Errorf("netplumb: %w", err)
		}
	}
	a := &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(p.gateway, p.cfg.Subnet.Bits()))}
	if err := h.AddrReplace(br, a); err != nil {
		return fmt.Errorf("netplumb: address %s on %s: %w", a, p.cfg.Bridge, err)
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("netplumb: %w", err)
	}
	err = InNamespace(p.node, func() error {
		return sysctls(map[string]string{
			"net/ipv4/ip_forward": "1",
			// The bridge speaks IPv4 only: no IPv6 address, no router
			// advertisements to workloads.
			"net/ipv6/conf/" + p.cfg.Bridge + "/disable_ipv6": "1",
		})
	})
	if err != nil {
		return err
	}
	return p.apply()
}

// Teardown removes the rule set and the bridge (after every Detach).
func (p *Plumber) Teardown() error {
	c, err := nftables.New(nftables.WithNetNSFd(int(p.node)))
	if err != nil {
		return fmt.Errorf("netplumb: %w", err)
	}
	errs := []error{remove(c)}
	h, err := handle(p.node)
	if err != nil {
		return fmt.Errorf("netplumb: %w", err)
	}
	defer h.Close()
	if br, err := h.LinkByName(p.cfg.Bridge); err == nil {
		errs = append(errs, h.LinkDel(br))
	}
	return errors.Join(errs...)
}

// State is the rule set's input as it is now.
func (p *Plumber) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := State{Bridge: p.cfg.Bridge, Subnet: p.cfg.Subnet, Gateway: p.gateway, LAN: p.cfg.LAN, Resolvers: p.cfg.Resolvers}
	var names []string
	for d := range p.ports {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		s.Ports = append(s.Ports, p.ports[d]...)
	}
	return s
}

func (p *Plumber) apply() error {
	c, err := nftables.New(nftables.WithNetNSFd(int(p.node)))
	if err != nil {
		return fmt.Errorf("netplumb: %w", err)
	}
	return apply(c, Rules(p.State()))
}

// SetUplink updates the management network's prefixes and resolvers (after
// a DHCP renewal that changed them) and reloads the rules.
func (p *Plumber) SetUplink(lan []netip.Prefix, resolvers []netip.Addr) error {
	p.mu.Lock()
	p.cfg.LAN, p.cfg.Resolvers = lan, resolvers
	p.mu.Unlock()
	return p.apply()
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// sysctls writes /proc/sys keys; call it on a thread in the namespace.
func sysctls(kv map[string]string) error {
	for k, v := range kv {
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
			return fmt.Errorf("netplumb: sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// InNamespace runs fn on an OS thread switched into ns. A thread that cannot be
// switched back is thrown away.
func InNamespace(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("netplumb: entering a network namespace: %w", err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// newNamedNS creates a network namespace kept alive by a bind mount on the
// file path, as ip-netns does.
func newNamedNS(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("netplumb: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// This thread ends in the new namespace and is thrown away.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netplumb: new network namespace: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("netplumb: keeping network namespace at %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// deleteNamedNS drops the namespace kept at path.
func deleteNamedNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("netplumb: unmounting %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("netplumb: %w", err)
	}
	return nil
}

// handle is a netlink handle in ns for links, addresses and routes only:
// asking for every family would also open XFRM, which fails with "protocol
// not supported" on a kernel whose xfrm_user module is not loaded (the
// node's).
func handle(ns netns.NsHandle) (*netlink.Handle, error) {
	return netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
}
