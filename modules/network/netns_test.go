package network

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/testutil"
	"github.com/gridnode/gridnode/workload/netplumb"

	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/insomniacslk/dhcp/rfc1035label"
	uiorand "github.com/u-root/uio/rand"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The DHCP and static tests run the module for real: the client in a child
// process (this test binary, re-executed) in a network namespace of its own,
// a server4 DHCP server in-process in a second namespace, joined by a veth
// pair the test creates. Nothing touches the host's network or clock.

const childEnv = "GRIDNODE_NETTEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child runs the module in the namespace it was started in.
func child() int {
	resolvConfPath = os.Getenv("TEST_RESOLV")
	setClock = func(time.Time) error { return nil } // never the host's clock
	defaultNTP = []string{"127.0.0.1"}
	carrierWait, offerWait, backoffCap = 3*time.Second, 3*time.Second, 2*time.Second
	addrRefresh = 500 * time.Millisecond
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if os.Getenv("TEST_CRNG_UNREADY") != "" {
		if err := crngUnready(); err != nil {
			log.Error("cannot simulate an uninitialised random pool", "err", err)
			return 1
		}
	}
	iface := os.Getenv("TEST_IFACE")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := netlink.LinkByName(iface); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log.Error("test interface never appeared", "iface", iface)
			return 1
		}
		time.Sleep(20 * time.Millisecond)
	}
	cfg := config.Default()
	cfg.Network = os.Getenv("TEST_NETWORK")
	cfg.Iface = os.Getenv("TEST_FORCE")
	if err := Run(ctx, cfg, log); err != nil {
		log.Error("network module failed", "err", err)
		return 1
	}
	return 0
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test needs root (network namespaces, veth); CI runs as root, so something is wrong")
	}
	t.Skip("skipping: needs root for network namespaces and veth (run as root, as CI does)")
}

// newNS makes a new, unnamed network namespace.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	ch := make(chan netns.NsHandle, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		ns, err := netns.New()
		if err != nil {
			errc <- err
			return
		}
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- ns
	}()
	select {
	case ns := <-ch:
		t.Cleanup(func() { ns.Close() })
		return ns
	case err := <-errc:
		t.Fatalf("creating a network namespace: %v", err)
	}
	return 0
}

var (
	serverIP  = net.IPv4(10, 99, 0, 1).To4()
	clientIP  = net.IPv4(10, 99, 0, 2).To4()
	clientMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x99, 0x00, 0x02}
)

// bench is a server namespace and a child running the module, joined by veth.
type bench struct {
	t      *testing.T
	sns    netns.NsHandle
	cns    netns.NsHandle
	hc     *netlink.Handle // in the child's namespace
	run    string          // the child's fact folder
	resolv string
}

func newBench(t *testing.T, network, force string, env ...string) *bench {
	return newBenchLink(t, network, force, true, env...)
}

// newBenchLink is newBench with the server end of the veth left down when
// up is false: the client then sees no carrier, like an unplugged cable.
func newBenchLink(t *testing.T, network, force string, up bool, env ...string) *bench {
	requireRoot(t)
	b := &bench{t: t, sns: newNS(t), run: t.TempDir()}
	b.resolv = filepath.Join(t.TempDir(), "etc", "resolv.conf")

	logs := &testutil.SyncBuffer{}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "GRIDNODE_RUN="+b.run, "TEST_RESOLV="+b.resolv,
		"TEST_IFACE=gnc0", "TEST_NETWORK="+network, "TEST_FORCE="+force)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the client process: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() || os.Getenv("TEST_CHILD_LOG") != "" {
			t.Logf("client log:\n%s", logs.String())
		}
	})
	var err error
	if b.cns, err = netns.GetFromPid(cmd.Process.Pid); err != nil {
		t.Fatalf("client namespace: %v", err)
	}
	t.Cleanup(func() { b.cns.Close() })
	if b.hc, err = netlink.NewHandleAt(b.cns, unix.NETLINK_ROUTE); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.hc.Close)
	hs, err := netlink.NewHandleAt(b.sns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hs.Close)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gns0"}, PeerName: "gnc0",
		PeerHardwareAddr: clientMAC, PeerNamespace: netlink.NsFd(int(b.cns))}
	if err := hs.LinkAdd(veth); err != nil {
		t.Fatalf("creating the veth pair: %v", err)
	}
	link, err := hs.LinkByName("gns0")
	if err != nil {
		t.Fatal(err)
	}
	if err := hs.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: serverIP, Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if up {
		if err := hs.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// dhcpd is a one-address DHCP server on server4 with a short lease.
type dhcpd struct {
	srv           *server4.Server
	extra         []dhcpv4.Modifier // more options in every reply
	ignoreUnicast atomic.Bool
	renewals      atomic.Int32 // unicast REQUESTs with ciaddr (RENEWING)
	rebinds       atomic.Int32 // broadcast REQUESTs with ciaddr (REBINDING)
}

func (b *bench) startDHCP(d *dhcpd) {
	b.t.Helper()
	var conn *net.UDPConn
	err := netplumb.InNamespace(b.sns, func() (err error) {
		conn, err = server4.NewIPv4UDPConn("gns0", &net.UDPAddr{Port: dhcpv4.ServerPort})
		return err
	})
	if err != nil {
		b.t.Fatalf("DHCP server socket: %v", err)
	}
	d.srv, err = server4.NewServer("", nil, d.handle, server4.WithConn(conn))
	if err != nil {
		b.t.Fatal(err)
	}
	go d.srv.Serve()
}

func (d *dhcpd) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	var typ dhcpv4.MessageType
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		typ = dhcpv4.MessageTypeAck
		if !m.ClientIPAddr.IsUnspecified() {
			if peer.(*net.UDPAddr).IP.Equal(net.IPv4bcast) {
				d.rebinds.Add(1)
			} else {
				d.renewals.Add(1)
				if d.ignoreUnicast.Load() {
					return
				}
			}
		}
	default:
		return
	}
	reply, err := dhcpv4.NewReplyFromRequest(m, append([]dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithYourIP(clientIP),
		dhcpv4.WithServerIP(serverIP),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverIP)),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithRouter(serverIP),
		dhcpv4.WithDNS(serverIP),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(8 * time.Second)),
		dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(2 * time.Second)),
		dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(4 * time.Second)),
	}, d.extra...)...)
	if err != nil {
		return
	}
	conn.WriteTo(reply.ToBytes(), peer)
}

func (b *bench) readFact(name string, v any) bool {
	data, err := os.ReadFile(filepath.Join(b.run, name+".json"))
	if err != nil {
		return false
	}
	return json.Unmarshal(data, v) == nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, d, cond, "%s", what)
}

func (b *bench) network() fact.Network {
	var f fact.Network
	b.readFact("network", &f)
	return f
}

func (b *bench) defaultRoute() net.IP {
	link, err := b.hc.LinkByName("gnc0")
	if err != nil {
		return nil
	}
	routes, _ := b.hc.RouteList(link, netlink.FAMILY_V4)
	for _, r := range routes {
		if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
			return r.Gw
		}
	}
	return nil
}

func TestDHCPLeaseRenewRebindRediscover(t *testing.T) {
	b := newBench(t, "dhcp", "gnc0")
	d := &dhcpd{}
	b.startDHCP(d)

	// Lease: the address, the route and resolv.conf are applied and published.
	waitFor(t, 20*time.Second, "the network fact with the leased address", func() bool {
		f := b.network()
		return len(f.Addresses) > 0 && f.Addresses[0] == "10.99.0.2/24"
	})
	f := b.network()
	if f.Mode != "dhcp" || f.Iface != "gnc0" || f.MAC != clientMAC.String() || f.Gateway != "10.99.0.1" || f.Lease == nil || f.Lease.Server != "10.99.0.1" {
		t.Errorf("network fact = %+v, want dhcp on gnc0 %s via 10.99.0.1 leased from 10.99.0.1", f, clientMAC)
	}
	if gw := b.defaultRoute(); !gw.Equal(serverIP) {
		t.Errorf("default route via %v, want %v", gw, serverIP)
	}
	if rc, _ := os.ReadFile(b.resolv); !strings.Contains(string(rc), "nameserver 10.99.0.1\n") {
		t.Errorf("resolv.conf = %q, want nameserver 10.99.0.1", rc)
	}

	// Renewal (unicast to the server) at T1 = 2s.
	waitFor(t, 10*time.Second, "a unicast renewal", func() bool {
		f := b.network()
		return d.renewals.Load() > 0 && f.Lease != nil && f.Lease.Renewals >= 1
	})

	// Rebinding: the server ignores unicast renewals, the client broadcasts
	// at T2 and keeps the lease.
	d.ignoreUnicast.Store(true)
	before := b.network().Lease.Renewals
	waitFor(t, 15*time.Second, "a renewal by rebinding", func() bool {
		f := b.network()
		return d.rebinds.Load() > 0 && f.Lease != nil && f.Lease.Renewals > before && len(f.Addresses) > 0
	})

	// Server gone: the lease expires, the address is dropped and said so.
	d.srv.Close()
	waitFor(t, 20*time.Second, "the address to be dropped at lease expiry", func() bool {
		f := b.network()
		var s fact.NetworkStatus
		b.readFact("network-status", &s)
		return len(f.Addresses) == 0 && strings.Contains(f.Error, "expired") && s.State != fact.NetUp
	})
	lost := time.Now()

	// Server back: discovery starts over and finds it.
	d2 := &dhcpd{}
	b.startDHCP(d2)
	t.Cleanup(func() { d2.srv.Close() })
	waitFor(t, 30*time.Second, "a new lease after the server came back", func() bool {
		f := b.network()
		return len(f.Addresses) > 0 && f.Lease != nil && f.Lease.Obtained.After(lost.Add(-time.Second)) && f.Error == ""
	})
	if gw := b.defaultRoute(); !gw.Equal(serverIP) {
		t.Errorf("after re-discovery: default route via %v, want %v", gw, serverIP)
	}
}

// A DHCP server sends a domain that would add lines of its own to
// resolv.conf, and search domains with a newline, an options line and one
// overlong: only the valid search domain reaches resolv.conf, and the log
// says what was left out.
func TestDHCPHostileDomainsRefused(t *testing.T) {
	b := newBench(t, "dhcp", "gnc0")
	d := &dhcpd{extra: []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptDomainName("evil.example\noptions ndots:15 attempts:5\nnameserver 6.6.6.6")),
		dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{
			"farm.lan", "x\nnameserver 6.6.6.6", "options timeout:30", strings.Repeat("a", 60) + "." + strings.Repeat("b.", 100) + "com",
		}})),
	}}
	b.startDHCP(d)
	t.Cleanup(func() { d.srv.Close() })
	waitFor(t, 20*time.Second, "the network fact with the leased address", func() bool {
		f := b.network()
		return len(f.Addresses) > 0 && f.Addresses[0] == "10.99.0.2/24"
	})
	rc, _ := os.ReadFile(b.resolv)
	if want := "# written by gridnode's network module\nsearch farm.lan\nnameserver 10.99.0.1\n"; string(rc) != want {
		t.Errorf("resolv.conf = %q, want %q", rc, want)
	}
}

func TestStaticByMAC(t *testing.T) {
	b := newBench(t, "static:"+clientMAC.String()+",10.99.0.5/24,10.99.0.1,10.99.0.53,10.99.0.54", "")
	waitFor(t, 20*time.Second, "the network fact with the static address", func() bool {
		f := b.network()
		return len(f.Addresses) > 0
	})
	f := b.network()
	if f.Mode != "static" || f.Iface != "gnc0" || f.Addresses[0] != "10.99.0.5/24" || f.Gateway != "10.99.0.1" || strings.Join(f.DNS, ",") != "10.99.0.53,10.99.0.54" || f.Lease != nil {
		t.Errorf("network fact = %+v", f)
	}
	if gw := b.defaultRoute(); !gw.Equal(serverIP) {
		t.Errorf("default route via %v, want %v", gw, serverIP)
	}
	rc, _ := os.ReadFile(b.resolv)
	if !strings.Contains(string(rc), "nameserver 10.99.0.53\nnameserver 10.99.0.54\n") {
		t.Errorf("resolv.conf = %q", rc)
	}
	// No NTP server and no registrar here: the clock says so, readiness did not wait.
	waitFor(t, 10*time.Second, "the clock outcome in the fact", func() bool {
		return b.network().Clock.Source != ""
	})
	if c := b.network().Clock; c.Source != "none" || c.Error == "" {
		t.Errorf("clock = %+v, want source none with an error", c)
	}
}

func TestNoLeaseSaysWhy(t *testing.T) {
	b := newBench(t, "dhcp", "gnc0") // no DHCP server at all
	waitFor(t, 20*time.Second, "network-status to explain the missing lease", func() bool {
		var s fact.NetworkStatus
		return b.readFact("network-status", &s) && s.State == fact.NetSearching && strings.Contains(s.Error, "gnc0: no DHCP offer after")
	})
	if _, err := os.Stat(filepath.Join(b.run, "network.json")); err == nil {
		t.Error("network fact published without an address: the supervisor would think the network ready")
	}
}

func TestNoCarrierSaysWhy(t *testing.T) {
	b := newBenchLink(t, "dhcp", "gnc0", false)
	want := "gnc0: no carrier — is the cable plugged in?"
	waitFor(t, 20*time.Second, "network-status to say the cable is out", func() bool {
		var s fact.NetworkStatus
		return b.readFact("network-status", &s) && s.State == fact.NetSearching && strings.Contains(s.Error, want) &&
			len(s.NICs) == 1 && s.NICs[0].MAC == clientMAC.String()
	})
}

// A node whose kernel random pool is not initialised (no RDRAND, no
// hardware RNG: getrandom(GRND_NONBLOCK) fails with EAGAIN) gets its lease
// as quickly as any: DHCP transaction ids do not wait for the pool. Before,
// the DHCP library looped on getrandom for two minutes per message.
func TestDHCPDoesNotWaitForEntropy(t *testing.T) {
	b := newBench(t, "dhcp", "gnc0", "TEST_CRNG_UNREADY=1")
	d := &dhcpd{}
	b.startDHCP(d)
	t.Cleanup(func() { d.srv.Close() })
	waitFor(t, 20*time.Second, "a lease while the random pool is not ready", func() bool {
		f := b.network()
		return len(f.Addresses) > 0 && f.Addresses[0] == "10.99.0.2/24"
	})
}

// crngUnready stands in for a kernel whose random pool is not initialised,
// where it stalled the module: the DHCP library's random source (u-root's
// uio/rand, which loops on getrandom(GRND_NONBLOCK) while it fails with
// EAGAIN) never answers. A seccomp filter on getrandom cannot show it here:
// on this machine's kernel (6.11 and later) getrandom runs in the vDSO,
// which seccomp does not see; the node's kernel (6.1) has none.
func crngUnready() error {
	uiorand.Reader = neverReady{}
	return nil
}

type neverReady struct{}

func (neverReady) Read(b []byte) (int, error) { select {} }

func (neverReady) ReadContext(ctx context.Context, b []byte) (int, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}
