package network

import (
	"context"
	"math/rand/v2"

	uiorand "github.com/u-root/uio/rand"
)

// The DHCP library draws its transaction ids (DHCPv4 and DHCPv6) from
// u-root's uio/rand, which loops on getrandom(GRND_NONBLOCK) until the
// kernel's random pool is initialised, for up to two minutes per message
// (dhcpv4.RandomTimeout), burning a CPU meanwhile. On a machine without
// RDRAND and without a hardware RNG the pool can stay uninitialised for
// minutes, and the network stalls at "starting" with nothing said; the
// failed message then shows only as "no DHCP offer".
//
// A transaction id only pairs an answer with its request on the local
// link: it needs to differ between clients and between attempts, not to be
// secret. So the module's DHCP ids come from math/rand/v2, whose generator
// the Go runtime seeds at start without waiting for the pool (from the
// AT_RANDOM bytes the kernel hands every process). What does need the pool
// (TLS to an HTTPS registrar, NTP's cookie through crypto/rand) waits for
// it outside the path to a lease; PID 1 says on the console while the pool
// is not ready.

// xidSource is a uio/rand.ContextReader that never waits.
type xidSource struct{}

func (xidSource) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return len(b), nil
}

func (s xidSource) ReadContext(_ context.Context, b []byte) (int, error) { return s.Read(b) }

// noWaitForEntropy points the DHCP library's random source at xidSource.
// The module runs as a process of its own: this touches nothing else.
func noWaitForEntropy() { uiorand.Reader = xidSource{} }
