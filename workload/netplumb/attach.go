package netplumb

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Attachment is a deployment's network.
type Attachment struct {
	NetNS      string     // path of the namespace file, for the OCI spec
	Addr       netip.Addr // the deployment's address
	ResolvConf string     // path of the resolv.conf its containers see
}

// keyPattern is what a deployment key may be: it names files.
var keyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,127}$`)

// names of a deployment's namespace file, host-side veth and resolv.conf.
// Interface names have 15 bytes: the veth is named by a hash.
func (p *Plumber) names(deployment string) (nsPath, veth, resolv string) {
	sum := sha256.Sum256([]byte(deployment))
	return filepath.Join(p.cfg.Dir, "netns", deployment), "gw" + hex.EncodeToString(sum[:6]),
		filepath.Join(p.cfg.Dir, "resolv", deployment+".conf")
}

// List returns the deployments that have a network namespace.
func (p *Plumber) List() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(p.cfg.Dir, "netns"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	var l []string
	for _, e := range ents {
		l = append(l, e.Name())
	}
	return l, err
}

// addr is the deployment's address: the n-th after the gateway for its
// slot n, the same across restarts.
func (p *Plumber) addr(deployment string) (netip.Addr, error) {
	n, err := p.addrs.Get(deployment)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netplumb: address for %s: %w", deployment, err)
	}
	a := p.gateway
	for i := 0; i <= n; i++ {
		a = a.Next()
	}
	return a, nil
}

// Attach gives deployment its network namespace, veth and address (the
// same address as before, across restarts). Attaching twice is harmless.
func (p *Plumber) Attach(deployment string) (Attachment, error) {
	if !keyPattern.MatchString(deployment) {
		return Attachment{}, fmt.Errorf("netplumb: deployment key %q: lower-case letters, digits, '.' and '-'", deployment)
	}
	nsPath, veth, resolv := p.names(deployment)
	a, err := p.addr(deployment)
	if err != nil {
		return Attachment{}, err
	}
	att := Attachment{NetNS: nsPath, Addr: a, ResolvConf: resolv}
	if err := os.MkdirAll(filepath.Dir(resolv), 0o755); err != nil {
		return att, fmt.Errorf("netplumb: %w", err)
	}
	// Containers ask the bridge address, which forwards to the node's
	// resolver (see Rules).
	if err := os.WriteFile(resolv, []byte("nameserver "+p.gateway.String()+"\n"), 0o644); err != nil {
		return att, fmt.Errorf("netplumb: %w", err)
	}
	if _, err := os.Stat(nsPath); err != nil {
		if err := newNamedNS(nsPath); err != nil {
			return att, err
		}
	}
	ws, err := netns.GetFromPath(nsPath)
	if err != nil {
		return att, fmt.Errorf("netplumb: %w", err)
	}
	defer ws.Close()
	h, err := handle(p.node)
	if err != nil {
		return att, fmt.Errorf("netplumb: %w", err)
	}
	defer h.Close()
	if _, err := h.LinkByName(veth); err == nil {
		return att, nil // attached before
	}
	if err := p.plug(h, ws, veth, a); err != nil {
		if l, e := h.LinkByName(veth); e == nil {
			h.LinkDel(l)
		}
		return att, fmt.Errorf("netplumb: attaching %s: %w", deployment, err)
	}
	return att, nil
}

// plug creates the veth pair with its inner end (eth0) in ws, puts the
// outer end on the bridge, isolated, and configures the inner end.
func (p *Plumber) plug(h *netlink.Handle, ws netns.NsHandle, veth string, a netip.Addr) error {
	br, err := h.LinkByName(p.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w (Setup first)", p.cfg.Bridge, err)
	}
	la := netlink.NewLinkAttrs()
	la.Name = veth
	la.MasterIndex = br.Attrs().Index
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerNamespace: netlink.NsFd(ws)}); err != nil {
		return fmt.Errorf("veth %s: %w (is the veth module loaded?)", veth, err)
	}
	outer, err := h.LinkByName(veth)
	if err != nil {
		return err
	}
	// Isolated bridge ports forward only to the bridge itself, never to
	// one another: deployments do not see each other even at layer 2.
	if err := h.LinkSetIsolated(outer, true); err != nil {
		return fmt.Errorf("isolating %s: %w", veth, err)
	}
	if err := h.LinkSetUp(outer); err != nil {
		return err
	}
	wh, err := handle(ws)
	if err != nil {
		return err
	}
	defer wh.Close()
	for _, name := range []string{"lo", "eth0"} {
		l, err := wh.LinkByName(name)
		if err != nil {
			return err
		}
		if name == "eth0" {
			if err := wh.AddrReplace(l, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(a, p.cfg.Subnet.Bits()))}); err != nil {
				return err
			}
		}
		if err := wh.LinkSetUp(l); err != nil {
			return err
		}
		if name == "eth0" {
			gw := p.gateway.AsSlice()
			if err := wh.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw}); err != nil {
				return fmt.Errorf("default route: %w", err)
			}
		}
	}
	return InNamespace(ws, func() error {
		return sysctls(map[string]string{
			"net/ipv6/conf/all/disable_ipv6":     "1",
			"net/ipv6/conf/default/disable_ipv6": "1",
			// Capabilities count in the namespace's owner, the node's user
			// namespace: root in the container binds ports under 1024 and
			// pings only through these (what Docker sets too).
			"net/ipv4/ip_unprivileged_port_start": "0",
			"net/ipv4/ping_group_range":           "0 2147483647",
		})
	})
}

// Detach removes the deployment's published ports, veth, namespace and
// resolv.conf. Its address stays its own until Release.
func (p *Plumber) Detach(deployment string) error {
	if !keyPattern.MatchString(deployment) {
		return fmt.Errorf("netplumb: deployment key %q: lower-case letters, digits, '.' and '-'", deployment)
	}
	nsPath, veth, resolv := p.names(deployment)
	var errs []error
	p.mu.Lock()
	_, had := p.ports[deployment]
	delete(p.ports, deployment)
	p.mu.Unlock()
	if had {
		errs = append(errs, p.apply())
	}
	if h, err := handle(p.node); err == nil {
		if l, err := h.LinkByName(veth); err == nil {
			errs = append(errs, h.LinkDel(l))
		}
		h.Close()
	}
	errs = append(errs, deleteNamedNS(nsPath))
	if err := os.Remove(resolv); err != nil && !os.IsNotExist(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Release frees the deployment's address for others (after Detach).
func (p *Plumber) Release(deployment string) error { return p.addrs.Release(deployment) }

// Port is a published port: NodePort on the node's addresses to Port of
// the deployment.
type Port struct {
	Proto          string // tcp or udp
	NodePort, Port uint16
}

// Publish forwards ports of the node to the deployment (replacing what it
// had published), from the LAN and from the node itself.
func (p *Plumber) Publish(deployment string, ports []Port) error {
	a, err := p.addr(deployment)
	if err != nil {
		return err
	}
	p.mu.Lock()
	used := map[string]string{}
	for d, l := range p.ports {
		for _, x := range l {
			used[fmt.Sprintf("%s/%d", x.Proto, x.NodePort)] = d
		}
	}
	var pub []Published
	for _, x := range ports {
		k := fmt.Sprintf("%s/%d", x.Proto, x.NodePort)
		if d, ok := used[k]; ok && d != deployment {
			p.mu.Unlock()
			return fmt.Errorf("netplumb: port %s of the node is already published by %s", k, d)
		}
		if x.Proto != "tcp" && x.Proto != "udp" {
			p.mu.Unlock()
			return fmt.Errorf("netplumb: port %d/%s: the protocol is tcp or udp", x.NodePort, x.Proto)
		}
		pub = append(pub, Published{Proto: x.Proto, NodePort: x.NodePort, To: netip.AddrPortFrom(a, x.Port)})
	}
	p.ports[deployment] = pub
	p.mu.Unlock()
	return p.apply()
}
