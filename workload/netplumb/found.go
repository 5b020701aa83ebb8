package netplumb

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Found lists what the kernel holds of the workload network beyond the
// bridge and the base rules: the veths plugged into the bridge, and the
// rules of the workload table that forward to a workload's address (the
// published ports), as read back from the kernel.
func (p *Plumber) Found() (links, rules []string, err error) {
	h, err := handle(p.node)
	if err != nil {
		return nil, nil, fmt.Errorf("netplumb: %w", err)
	}
	defer h.Close()
	if br, err := h.LinkByName(p.cfg.Bridge); err == nil {
		all, err := h.LinkList()
		if err != nil {
			return nil, nil, fmt.Errorf("netplumb: listing links: %w", err)
		}
		for _, l := range all {
			if l.Attrs().MasterIndex == br.Attrs().Index {
				links = append(links, l.Attrs().Name)
			}
		}
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(p.node)))
	if err != nil {
		return links, nil, fmt.Errorf("netplumb: %w", err)
	}
	t := &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return links, nil, fmt.Errorf("netplumb: listing chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name != Table {
			continue
		}
		rs, err := c.GetRules(t, ch)
		if err != nil {
			return links, nil, fmt.Errorf("netplumb: listing the rules of chain %s: %w", ch.Name, err)
		}
		for _, r := range rs {
			if to, ok := dnatTo(r.Exprs); ok && p.cfg.Subnet.Contains(to.Addr()) {
				rules = append(rules, fmt.Sprintf("%s dnat to %s", ch.Name, to))
			}
		}
	}
	return links, rules, nil
}

// dnatTo finds the address and port a destination NAT rule loads.
func dnatTo(exprs []expr.Any) (netip.AddrPort, bool) {
	var addr netip.Addr
	var port uint16
	var nat bool
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Immediate:
			switch len(e.Data) {
			case 4:
				addr, _ = netip.AddrFromSlice(e.Data)
			case 2:
				port = uint16(e.Data[0])<<8 | uint16(e.Data[1])
			}
		case *expr.NAT:
			nat = e.Type == expr.NATTypeDestNAT
		}
	}
	return netip.AddrPortFrom(addr, port), nat && addr.IsValid()
}
