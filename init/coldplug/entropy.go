package coldplug

import (
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// pool is the kernel's random pool as the entropy watch sees it.
type pool struct {
	// Ready says whether the pool is initialised now.
	Ready func() bool
	// Wait returns once the pool is initialised.
	Wait func()
	// RNG names the hardware RNG feeding the pool ("" for none).
	RNG func() string
	// Grace is how long a pool that is not ready may take before it is
	// said on the console: a hardware RNG that coldplug just loaded fills
	// it within moments. Every is how often the console is reminded.
	Grace, Every time.Duration
}

// sysPool is the running kernel's pool: getrandom(2) fails with EAGAIN
// under GRND_NONBLOCK, and blocks without it, until the pool is initialised.
var sysPool = pool{
	Ready: func() bool {
		var b [1]byte
		_, err := unix.Getrandom(b[:], unix.GRND_NONBLOCK)
		return err != unix.EAGAIN
	},
	Wait: func() {
		var b [1]byte
		for {
			if _, err := unix.Getrandom(b[:], 0); err != unix.EINTR {
				return
			}
		}
	},
	RNG: func() string {
		b, _ := os.ReadFile("/sys/class/misc/hw_random/rng_current")
		if s := strings.TrimSpace(string(b)); s != "none" {
			return s
		}
		return ""
	},
	Grace: 2 * time.Second,
	Every: 30 * time.Second,
}

// watch says on the console, while the kernel's random pool is not
// initialised, that what needs secure random numbers waits for it, and
// what would fill it; and says when it is ready. On a CPU without RDRAND
// and a machine without a hardware RNG the pool can take minutes, and
// until now the node said nothing meanwhile.
func (p pool) watch(logf func(string, ...any)) {
	if p.Ready() {
		return
	}
	t0 := time.Now()
	done := make(chan struct{})
	go func() { p.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(p.Grace):
	}
	rng := p.RNG()
	if rng == "" {
		rng = "no hardware RNG found (a virtio-rng device on a VM, a TPM, or the chipset's RNG enabled in the firmware fills it; so does disk and network activity, slowly)"
	} else {
		rng = "hardware RNG " + rng
	}
	logf("random: the kernel's random pool is not ready; a new node's identity key and TLS wait for it, the network does not; %s", rng)
	tick := time.NewTicker(p.Every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			logf("random: the kernel's random pool is ready, after %s", time.Since(t0).Round(time.Second))
			return
		case <-tick.C:
			logf("random: still waiting for the kernel's random pool (%s)", time.Since(t0).Round(time.Second))
		}
	}
}
