package runner

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/gridnode/gridnode/node/fact"
)

// uplink reads the management network's prefixes and resolvers from the
// network fact n.
func uplink(n fact.Network) (lan []netip.Prefix, dns []netip.Addr) {
	for _, a := range n.Addresses {
		if p, err := netip.ParsePrefix(a); err == nil {
			lan = append(lan, p.Masked())
		}
	}
	for _, d := range n.DNS {
		if a, err := netip.ParseAddr(d); err == nil {
			dns = append(dns, a)
		}
	}
	return lan, dns
}

// followUplink keeps the workload network's view of the management network
// current: the module starts before the network (a boot without one brings
// deployments back all the same), so the LAN prefixes to block and the
// resolvers to forward DNS to arrive later, and change with a new lease.
// It calls set with the network fact's prefixes and resolvers whenever they
// differ from what it last set, until ctx is done. A fact without
// addresses (a lost lease) changes nothing: the last LAN stays blocked.
func followUplink(ctx context.Context, facts fact.Folder, set func([]netip.Prefix, []netip.Addr) error, log *slog.Logger) {
	landed, stop := facts.Watch()
	defer stop()
	var lastLAN []netip.Prefix
	var lastDNS []netip.Addr
	for {
		var n fact.Network
		if facts.Wait(ctx, fact.NameNetwork, &n) != nil {
			return
		}
		lan, dns := uplink(n)
		if len(lan) > 0 && (!slices.Equal(lan, lastLAN) || !slices.Equal(dns, lastDNS)) {
			if err := set(lan, dns); err != nil {
				log.Error("workload network: applying the management network's prefixes and resolvers", "lan", lan, "dns", dns, "err", err)
			} else {
				log.Info("workload network follows the management network", "lan", lan, "dns", dns)
				lastLAN, lastDNS = lan, dns
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-landed:
		}
	}
}
