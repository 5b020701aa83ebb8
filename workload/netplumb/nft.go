package netplumb

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Table is the nftables table (family inet) that holds every workload rule;
// nothing else of the node's rule set is touched.
const Table = "gridnode-workloads"

// apply replaces the workload table with rules in one netlink transaction:
// the kernel switches from the old rule set to the new one at once, and a
// failed apply leaves the old one.
func apply(c *nftables.Conn, rules []Rule) error {
	t := &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}
	// Adding first makes the delete valid when the table does not exist.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	byName := map[string]*nftables.Chain{}
	for _, ch := range chains {
		policy := nftables.ChainPolicyAccept
		if ch.Drop {
			policy = nftables.ChainPolicyDrop
		}
		prio := nftables.ChainPriority(ch.Priority)
		byName[ch.Name] = c.AddChain(&nftables.Chain{
			Name: ch.Name, Table: t, Type: nftables.ChainType(ch.Type),
			Hooknum: hook(ch.Hook), Priority: &prio, Policy: &policy,
		})
	}
	for _, r := range rules {
		e, err := r.exprs()
		if err != nil {
			return err
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: byName[r.Chain], Exprs: e})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("netplumb: loading the nftables rules of table %s: %w", Table, err)
	}
	return nil
}

// remove deletes the workload table, if it is there.
func remove(c *nftables.Conn) error {
	t := &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("netplumb: deleting nftables table %s: %w", Table, err)
	}
	return nil
}

func hook(name string) *nftables.ChainHook {
	switch name {
	case "prerouting":
		return nftables.ChainHookPrerouting
	case "output":
		return nftables.ChainHookOutput
	case "postrouting":
		return nftables.ChainHookPostrouting
	case "input":
		return nftables.ChainHookInput
	}
	return nftables.ChainHookForward
}

// ifname is an interface name as the kernel compares it.
func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func cmp(data []byte) expr.Any {
	return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data}
}

// bits matches when any of mask's bits are set in register 1.
func bits(mask uint32) []expr.Any {
	return []expr.Any{
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// addr matches the source or destination address against p.
func addr(p netip.Prefix, dst bool) []expr.Any {
	proto, off, n := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	if p.Addr().Is6() {
		proto, off, n = unix.NFPROTO_IPV6, 8, 16
	}
	if dst {
		off += n
	}
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp([]byte{proto}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
	}
	if !p.IsSingleIP() {
		mask := make([]byte, n)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(e, cmp(p.Masked().Addr().AsSlice()))
}

// ctStatusDNAT is IPS_DST_NAT of the conntrack status.
const ctStatusDNAT = 1 << 5

func (r Rule) exprs() ([]expr.Any, error) {
	var e []expr.Any
	if r.IIf != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, cmp(ifname(r.IIf)))
	}
	if r.OIf != "" {
		op := expr.CmpOpEq
		if r.NotOIf {
			op = expr.CmpOpNeq
		}
		e = append(e, &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: ifname(r.OIf)})
	}
	switch r.CtState {
	case "":
	case "established,related":
		e = append(e, &expr.Ct{Register: 1, Key: expr.CtKeySTATE})
		e = append(e, bits(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)...)
	case "invalid":
		e = append(e, &expr.Ct{Register: 1, Key: expr.CtKeySTATE})
		e = append(e, bits(expr.CtStateBitINVALID)...)
	default:
		return nil, fmt.Errorf("netplumb: ct state %q", r.CtState)
	}
	if r.LocalDaddr {
		e = append(e, &expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			cmp(binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)))
	}
	if r.Saddr.IsValid() {
		e = append(e, addr(r.Saddr, false)...)
	}
	if r.Daddr.IsValid() {
		e = append(e, addr(r.Daddr, true)...)
	}
	if r.Proto != "" {
		p := map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP}[r.Proto]
		if p == 0 {
			return nil, fmt.Errorf("netplumb: protocol %q: tcp or udp", r.Proto)
		}
		e = append(e, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp([]byte{p}))
		if r.Dport != 0 {
			e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				cmp(binaryutil.BigEndian.PutUint16(r.Dport)))
		}
	}
	if r.CtDNAT {
		e = append(e, &expr.Ct{Register: 1, Key: expr.CtKeySTATUS})
		e = append(e, bits(ctStatusDNAT)...)
	}
	switch r.Verdict {
	case "accept":
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case "drop":
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	case "masquerade":
		e = append(e, &expr.Masq{})
	case "dnat":
		if !r.DNAT.Addr().Is4() {
			return nil, fmt.Errorf("netplumb: dnat to %s: IPv4 only", r.DNAT)
		}
		// Only IPv4 packets can be sent to an IPv4 address.
		e = append(e, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp([]byte{unix.NFPROTO_IPV4}),
			&expr.Immediate{Register: 1, Data: r.DNAT.Addr().AsSlice()},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(r.DNAT.Port())},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
	default:
		return nil, fmt.Errorf("netplumb: verdict %q", r.Verdict)
	}
	return e, nil
}
