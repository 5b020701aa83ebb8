package netplumb

import (
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/gridnode/gridnode/internal/need"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newNS returns a new, empty network namespace (the thread that made it is
// thrown away).
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	c := make(chan netns.NsHandle, 1)
	e := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.New()
		if err != nil {
			e <- err
			return
		}
		c <- ns
	}()
	select {
	case ns := <-c:
		t.Cleanup(func() { ns.Close() })
		return ns
	case err := <-e:
		t.Fatal(err)
	}
	return 0
}

// link joins namespaces a and b with a veth (aName in a, bName in b) and
// gives each end an address.
func link(t *testing.T, a netns.NsHandle, aName, aAddr string, b netns.NsHandle, bName, bAddr string) {
	t.Helper()
	h, err := netlink.NewHandleAt(a)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	la := netlink.NewLinkAttrs()
	la.Name = aName
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: bName, PeerNamespace: netlink.NsFd(b)}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		ns         netns.NsHandle
		name, addr string
	}{{a, aName, aAddr}, {b, bName, bAddr}} {
		configure(t, s.ns, s.name, s.addr)
	}
}

func configure(t *testing.T, ns netns.NsHandle, name, addr string) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, n := range []string{"lo", name} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if n == name && addr != "" {
			a, err := netlink.ParseAddr(addr)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.AddrAdd(l, a); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

func route(t *testing.T, ns netns.NsHandle, gw string) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}); err != nil {
		t.Fatal(err)
	}
}

// serve answers every TCP connection to addr in ns with name.
func serve(t *testing.T, ns netns.NsHandle, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := InNamespace(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, name)
			c.Close()
		}
	}()
}

// echoUDP answers every UDP datagram to addr in ns with name.
func echoUDP(t *testing.T, ns netns.NsHandle, addr, name string) {
	t.Helper()
	var pc net.PacketConn
	if err := InNamespace(ns, func() (err error) { pc, err = net.ListenPacket("udp", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(name), from)
		}
	}()
}

// fetch connects from ns to addr over proto and returns what it answers; a
// connection that is refused or dropped is an error. Drops are waited for
// 1.5 s: everything here is local and answers in microseconds.
func fetch(ns netns.NsHandle, proto, addr string) (string, error) {
	var c net.Conn
	if err := InNamespace(ns, func() (err error) { c, err = net.DialTimeout(proto, addr, 1500*time.Millisecond); return }); err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(1500 * time.Millisecond))
	if proto == "udp" {
		c.Write([]byte("query"))
	}
	b := make([]byte, 64)
	n, err := c.Read(b)
	if n > 0 {
		return string(b[:n]), nil
	}
	return "", err
}

// chainsOf returns the rules of each chain of an nft listing.
func chainsOf(listing string) map[string][]string {
	m := map[string][]string{}
	chain := ""
	for _, l := range strings.Split(listing, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "chain "):
			chain = strings.Fields(l)[1]
		case l == "}" || l == "" || strings.HasPrefix(l, "type ") || strings.HasPrefix(l, "table "):
		case chain != "":
			m[chain] = append(m[chain], l)
		}
	}
	return m
}

// A node namespace between a LAN (whose router also resolves DNS and has
// the cloud-metadata address) and the internet behind that router; two
// deployments of two owners on the node. A workload reaches the internet
// and DNS through the bridge, and nothing else; its published port answers
// from the LAN and from the node.
func TestWorkloadNetwork(t *testing.T) {
	need.Root(t, "network namespaces, veth, nftables")
	node, lan, inet := newNS(t), newNS(t), newNS(t)
	link(t, node, "eth0", "192.168.77.2/24", lan, "lan0", "192.168.77.1/24")
	link(t, lan, "up0", "203.0.113.1/24", inet, "eth0", "203.0.113.10/24")
	h, _ := netlink.NewHandleAt(lan)
	l, _ := h.LinkByName("lan0")
	meta, _ := netlink.ParseAddr("169.254.169.254/32")
	if err := h.AddrAdd(l, meta); err != nil {
		t.Fatal(err)
	}
	h.Close()
	route(t, node, "192.168.77.1")
	route(t, inet, "203.0.113.1")
	if err := InNamespace(lan, func() error { return sysctls(map[string]string{"net/ipv4/ip_forward": "1"}) }); err != nil {
		t.Fatal(err)
	}
	serve(t, inet, ":80", "internet")
	serve(t, lan, ":80", "lan")
	serve(t, lan, ":53", "dns-tcp")
	echoUDP(t, lan, ":53", "dns-udp")
	serve(t, node, ":9100", "node-status")

	// Every forbidden target answers when nothing is in the way.
	for _, c := range []struct {
		ns         netns.NsHandle
		addr, want string
	}{
		{node, "192.168.77.1:80", "lan"}, {node, "169.254.169.254:80", "lan"},
		{node, "203.0.113.10:80", "internet"}, {lan, "192.168.77.2:9100", "node-status"},
	} {
		if got, err := fetch(c.ns, "tcp", c.addr); got != c.want {
			t.Fatalf("setup: %s answers %q, %v", c.addr, got, err)
		}
	}

	dir := t.TempDir()
	p, err := New(Config{Dir: dir, LAN: []netip.Prefix{netip.MustParsePrefix("192.168.77.0/24")},
		Resolvers: []netip.Addr{netip.MustParseAddr("192.168.77.1")}}, node)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Setup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Teardown() })
	// Whatever fails below, no namespace stays mounted (Detach is
	// idempotent).
	t.Cleanup(func() { p.Detach("alice-web"); p.Detach("bob-db") })
	alice, err := p.Attach("alice-web")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := p.Attach("bob-db")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := p.Attach("alice-web"); err != nil || again != alice {
		t.Fatalf("attaching again: %+v, %v; want %+v", again, err, alice)
	}
	ans, err := netns.GetFromPath(alice.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer ans.Close()
	bns, err := netns.GetFromPath(bob.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer bns.Close()
	serve(t, ans, ":80", "alice")
	serve(t, bns, ":80", "bob")
	if err := p.Publish("alice-web", []Port{{Proto: "tcp", NodePort: 8080, Port: 80}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish("bob-db", []Port{{Proto: "tcp", NodePort: 8080, Port: 80}}); err == nil {
		t.Error("two deployments published the same node port")
	}
	if rc, _ := os.ReadFile(alice.ResolvConf); string(rc) != "nameserver 10.249.0.1\n" {
		t.Errorf("resolv.conf: %q", rc)
	}

	// nft(8) reads back from the kernel exactly the rules of the model,
	// chain by chain, in order.
	nft := need.Tool(t, "nft")
	var listing []byte
	if err := InNamespace(node, func() (err error) {
		listing, err = exec.Command(nft, "list", "table", "inet", Table).CombinedOutput()
		return err
	}); err != nil {
		t.Fatalf("nft list: %v\n%s", err, listing)
	}
	got := chainsOf(string(listing))
	want := map[string][]string{}
	for _, r := range Rules(p.State()) {
		want[r.Chain] = append(want[r.Chain], r.String())
	}
	for _, c := range chains {
		if strings.Join(got[c.Name], "\n") != strings.Join(want[c.Name], "\n") {
			t.Errorf("chain %s in the kernel:\n%s\nwant:\n%s", c.Name, strings.Join(got[c.Name], "\n"), strings.Join(want[c.Name], "\n"))
		}
	}

	gw := p.Gateway().String()
	for _, c := range []struct {
		name, proto, addr, want string
	}{
		{"the internet", "tcp", "203.0.113.10:80", "internet"},
		{"DNS over UDP through the bridge", "udp", gw + ":53", "dns-udp"},
		{"DNS over TCP through the bridge", "tcp", gw + ":53", "dns-tcp"},
		{"the LAN", "tcp", "192.168.77.1:80", ""},
		{"the LAN's resolver directly", "udp", "192.168.77.1:53", ""},
		{"the LAN's resolver directly over TCP", "tcp", "192.168.77.1:53", ""},
		{"cloud metadata", "tcp", "169.254.169.254:80", ""},
		{"the node's status server on its LAN address", "tcp", "192.168.77.2:9100", ""},
		{"the node's status server on the bridge", "tcp", gw + ":9100", ""},
		{"another owner's workload", "tcp", bob.Addr.String() + ":80", ""},
		{"another owner's workload through the node's published port", "tcp", "192.168.77.2:8080", ""},
	} {
		got, err := fetch(ans, c.proto, c.addr)
		if got != c.want {
			t.Errorf("from a workload, %s (%s %s): got %q (%v), want %q", c.name, c.proto, c.addr, got, err, c.want)
		}
	}
	if got, err := fetch(bns, "tcp", alice.Addr.String()+":80"); got != "" {
		t.Errorf("bob reached alice: %q %v", got, err)
	}
	// The published port, from the LAN and from the node itself.
	for _, from := range []struct {
		name string
		ns   netns.NsHandle
	}{{"the LAN", lan}, {"the node", node}} {
		if got, err := fetch(from.ns, "tcp", "192.168.77.2:8080"); got != "alice" {
			t.Errorf("published port from %s: %q, %v", from.name, got, err)
		}
	}

	// Undeploy leaves no namespace, veth or rule behind; teardown no table.
	for _, d := range []string{"alice-web", "bob-db"} {
		if err := p.Detach(d); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := fetch(lan, "tcp", "192.168.77.2:8080"); got != "" {
		t.Errorf("the published port still answers after detach: %q", got)
	}
	for _, f := range []string{alice.NetNS, bob.NetNS, alice.ResolvConf} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there", f)
		}
	}
	if m, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(m), filepath.Join(dir, "netns")) {
		t.Error("a namespace mount is left")
	}
	nh, _ := netlink.NewHandleAt(node)
	defer nh.Close()
	links, _ := nh.LinkList()
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, "gw") {
			t.Errorf("veth %s is left", l.Attrs().Name)
		}
	}
	if err := p.Teardown(); err != nil {
		t.Fatal(err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(node)))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == Table {
			t.Errorf("table %s is left", Table)
		}
	}
	if _, err := nh.LinkByName(DefaultBridge); err == nil {
		t.Error("the bridge is left")
	}
}
