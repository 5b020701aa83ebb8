package console

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// gridnode.status=mgmt:PORT, in network namespaces the test makes: the
// node's, with the management NIC gnm0 (10.98.0.1, its peer in a "farm"
// namespace) and a second NIC gnw0 (10.97.0.1, its peer in a "workload"
// namespace whose default route is the node). The endpoint answers what
// arrives on the management NIC only: not a workload that reaches the
// node's management address through the other NIC, not the node's own
// loopback. When the network fact names another NIC, the endpoint moves.
func TestStatusOnManagementNICOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test needs root (network namespaces, veth); CI runs as root")
		}
		t.Skip("needs root for network namespaces and veth")
	}
	node, farm, wl := newNS(t), newNS(t), newNS(t)
	pair(t, node, "gnm0", "10.98.0.1/24", farm, "gnp0", "10.98.0.2/24")
	pair(t, node, "gnw0", "10.97.0.1/24", wl, "gnq0", "10.97.0.2/24")
	h, err := netlink.NewHandleAt(wl, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	q, _ := h.LinkByName("gnq0")
	if err := h.RouteAdd(&netlink.Route{LinkIndex: q.Attrs().Index, Gw: net.ParseIP("10.97.0.1")}); err != nil {
		t.Fatalf("workload default route: %v", err)
	}

	port := "19100"
	dir := fixture(t)
	ep := &endpoint{at: mustStatus(t, "mgmt:"+port), srv: newServer(Handler(dir)), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer ep.srv.Close()
	t.Setenv("GRIDNODE_RUN", dir)
	setIface := func(name string) {
		t.Helper()
		if err := fact.Folder(dir).Write(fact.NameNetwork, fact.Network{Iface: name, Addresses: []string{"10.98.0.1/24"}}); err != nil {
			t.Fatal(err)
		}
		// The listener's socket is made in the calling thread's namespace.
		inNS(t, node, func() { ep.follow(dir) })
	}
	answers := func(from netns.NsHandle, host string) bool {
		ok := false
		inNS(t, from, func() {
			// Dialled here, on the thread in the namespace (an http.Client
			// would dial from another thread, in the host's namespace).
			c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 3*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET /status HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			ok = err == nil && resp.StatusCode == 200
		})
		return ok
	}

	setIface("gnm0")
	if !answers(farm, "10.98.0.1") {
		t.Fatal("the farm's network (on the management NIC) gets no answer")
	}
	if answers(wl, "10.98.0.1") {
		t.Error("a workload reaches the status endpoint through the node's other NIC")
	}
	if answers(node, "127.0.0.1") {
		t.Error("the node's loopback reaches the status endpoint")
	}
	var c fact.Console
	if fact.Folder(dir).Read(fact.NameConsole, &c); c.StatusAddr != "[::]:"+port {
		t.Errorf("console fact %+v, want status_addr [::]:%s", c, port)
	}

	setIface("gnw0")
	if !answers(wl, "10.98.0.1") || answers(farm, "10.98.0.1") {
		t.Error("after the management NIC became gnw0, the endpoint did not move to it")
	}
}

func mustStatus(t *testing.T, s string) config.StatusAddr {
	t.Helper()
	a, err := config.ParseStatus(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// newNS makes a network namespace with its loopback up.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	var ns netns.NsHandle
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		var err error
		ns, err = netns.New()
		if err == nil {
			var lo netlink.Link
			if lo, err = netlink.LinkByName("lo"); err == nil {
				err = netlink.LinkSetUp(lo)
			}
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// inNS runs fn on a thread in ns; the thread is not reused after.
func inNS(t *testing.T, ns netns.NsHandle, fn func()) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		err := netns.Set(ns)
		if err == nil {
			fn()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("entering a namespace: %v", err)
	}
}

// pair joins namespace a (NIC an, address aa) and b (bn, ba) with a veth.
func pair(t *testing.T, a netns.NsHandle, an, aa string, b netns.NsHandle, bn, ba string) {
	t.Helper()
	ha, err := netlink.NewHandleAt(a, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	if err := ha.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: an}, PeerName: bn, PeerNamespace: netlink.NsFd(int(b))}); err != nil {
		t.Fatalf("veth %s-%s: %v", an, bn, err)
	}
	hb, err := netlink.NewHandleAt(b, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	for _, s := range []struct {
		h          *netlink.Handle
		name, addr string
	}{{ha, an, aa}, {hb, bn, ba}} {
		l, err := s.h.LinkByName(s.name)
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr(s.addr)
		if err := s.h.AddrAdd(l, addr); err != nil {
			t.Fatalf("%s %s: %v", s.name, s.addr, err)
		}
		if err := s.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}
