package netboot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pin/tftp/v3"

	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/build/pxe"
	"github.com/gridnode/gridnode/grid/netboot"
)

// logRecorder keeps the server's log records for the tests to wait on.
type logRecorder struct {
	mu      sync.Mutex
	records []map[string]any
	changed chan struct{}
}

func newLog(t *testing.T) (*slog.Logger, *logRecorder) {
	r := &logRecorder{changed: make(chan struct{}, 1)}
	w := writerFunc(func(b []byte) (int, error) {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("log line %q: %v", b, err)
		}
		t.Logf("server: %s", bytes.TrimSpace(b))
		r.mu.Lock()
		r.records = append(r.records, m)
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
		return len(b), nil
	})
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), r
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// wait returns the first record whose fields have the given values, failing
// the test when none comes before the deadline.
func (r *logRecorder) wait(t *testing.T, want map[string]any) map[string]any {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		for _, m := range r.records {
			ok := true
			for k, v := range want {
				if m[k] != v {
					ok = false
					break
				}
			}
			if ok {
				r.mu.Unlock()
				return m
			}
		}
		r.mu.Unlock()
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("no log record with %v", want)
		}
	}
}

// bundle writes a PXE bundle of small stand-in files.
func bundle(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	in := media.Input{Cmdline: "console=ttyS0", Epoch: time.Unix(0, 0)}
	for _, f := range []struct {
		p    *string
		name string
	}{{&in.Kernel, "kernel"}, {&in.Initrd, "initrd"}, {&in.IPXEEFI, "ipxe.efi"}, {&in.Undionly, "undionly.kpxe"}} {
		*f.p = filepath.Join(src, f.name)
		if err := os.WriteFile(*f.p, bytes.Repeat([]byte(f.name), 300), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "pxe")
	if err := pxe.Write(in, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

const testConfig = `
default: {farm: 42, cmdline: "gridnode.net=dhcp"}
machines:
  "52:54:00:AA:BB:CC": {farm: 7, cmdline: "gridnode.hostname=n1"}
  "52-54-00-00-00-01": {cmdline: "gridnode.hostname=n2"}
`

type running struct {
	s    *netboot.Server
	l    netboot.Listeners
	log  *logRecorder
	http string
}

// start serves a bundle on loopback sockets of random ports.
func start(t *testing.T) running {
	t.Helper()
	cfg, err := netboot.ParseConfig("test.yaml", []byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	logger, rec := newLog(t)
	s, err := netboot.New(bundle(t), cfg, net.IPv4(127, 0, 0, 1), logger)
	if err != nil {
		t.Fatal(err)
	}
	var l netboot.Listeners
	if l.HTTP, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*net.PacketConn{&l.TFTP, &l.DHCP, &l.PXE} {
		if *c, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return running{s: s, l: l, log: rec, http: "http://" + l.HTTP.Addr().String() + "/"}
}

func TestConfig(t *testing.T) {
	cfg, err := netboot.ParseConfig("test.yaml", []byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	for _, c := range []struct {
		mac  string
		want netboot.Machine
	}{
		{"52:54:00:aa:bb:cc", netboot.Machine{Farm: 7, Cmdline: "gridnode.hostname=n1"}},
		{"52:54:00:00:00:01", netboot.Machine{Farm: 42, Cmdline: "gridnode.hostname=n2"}},
		{"52:54:00:99:99:99", netboot.Machine{Farm: 42, Cmdline: "gridnode.net=dhcp"}},
	} {
		if got := cfg.For(mac(c.mac)); got != c.want {
			t.Errorf("For(%s) = %+v, want %+v", c.mac, got, c.want)
		}
	}
	_, err = netboot.ParseConfig("bad.yaml", []byte("default: {farm: 1}\nmachines:\n  \"nope\": {farm: 2}\n"))
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:3") {
		t.Errorf("bad MAC: err = %v, want one naming bad.yaml:3", err)
	}
	_, err = netboot.ParseConfig("bad.yaml", []byte("default: {farm: 1, kernel: x}\n"))
	if err == nil || !strings.Contains(err.Error(), "kernel") {
		t.Errorf("unknown key: err = %v, want one naming the key", err)
	}
}

// exchange sends req to addr from a fresh loopback socket and returns the
// reply with req's transaction id, or nil when none comes within wait.
func exchange(t *testing.T, addr net.Addr, req *dhcpv4.DHCPv4, wait time.Duration) *dhcpv4.DHCPv4 {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteTo(req.ToBytes(), addr); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return nil
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		if m.TransactionID == req.TransactionID {
			return m
		}
	}
}

func discover(t *testing.T, mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	hw, _ := net.ParseMAC(mac)
	d, err := dhcpv4.NewDiscovery(hw, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func pxeClient(arch byte) []dhcpv4.Modifier {
	return []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:0000" + string('0'+arch) + ":UNDI:003016")),
		dhcpv4.WithGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0, arch}),
	}
}

func TestProxyDHCP(t *testing.T) {
	r := start(t)
	dhcpAddr, pxeAddr := r.l.DHCP.LocalAddr(), r.l.PXE.LocalAddr()

	// A machine that is not PXE booting is the farm DHCP server's business.
	plain := discover(t, "52:54:00:00:00:09")
	if m := exchange(t, dhcpAddr, plain, 300*time.Millisecond); m != nil {
		t.Errorf("non-PXE DISCOVER answered: %s", m.Summary())
	}
	r.log.wait(t, map[string]any{"msg": "netboot: dhcp: not answered", "mac": "52:54:00:00:00:09", "reason": "not a PXE client"})

	for _, c := range []struct {
		name string
		mods []dhcpv4.Modifier
		want string
	}{
		{"bios", pxeClient(0), "undionly.kpxe"},
		{"uefi-bc", pxeClient(7), "ipxe.efi"},
		{"uefi-x64", pxeClient(9), "ipxe.efi"},
		{"ipxe", append(pxeClient(9), dhcpv4.WithGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE"))),
			r.http + "boot.ipxe?mac=52:54:00:aa:bb:cc"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := discover(t, "52:54:00:aa:bb:cc", c.mods...)
			m := exchange(t, dhcpAddr, d, 10*time.Second)
			if m == nil {
				t.Fatal("PXE DISCOVER not answered")
			}
			if m.MessageType() != dhcpv4.MessageTypeOffer {
				t.Errorf("reply type %s, want OFFER", m.MessageType())
			}
			if m.BootFileName != c.want || m.BootFileNameOption() != c.want {
				t.Errorf("boot file %q (option 67 %q), want %q", m.BootFileName, m.BootFileNameOption(), c.want)
			}
			if !m.YourIPAddr.IsUnspecified() {
				t.Errorf("proxyDHCP offered address %s; it must offer none", m.YourIPAddr)
			}
			if !m.ServerIPAddr.Equal(net.IPv4(127, 0, 0, 1)) || !m.ServerIdentifier().Equal(net.IPv4(127, 0, 0, 1)) {
				t.Errorf("next server %s, server id %s; want the advertised 127.0.0.1", m.ServerIPAddr, m.ServerIdentifier())
			}
			if m.ClassIdentifier() != "PXEClient" || len(m.GetOneOption(dhcpv4.OptionVendorSpecificInformation)) == 0 {
				t.Errorf("reply lacks option 60 PXEClient or option 43: %s", m.Summary())
			}
		})
	}
	r.log.wait(t, map[string]any{"msg": "netboot: dhcp: offer", "mac": "52:54:00:aa:bb:cc", "bootfile": "undionly.kpxe"})

	// The PXE boot server port answers the REQUEST that follows an offer;
	// the DHCP port leaves REQUESTs to the farm's DHCP server.
	req := discover(t, "52:54:00:aa:bb:cc", append(pxeClient(7), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest))...)
	if m := exchange(t, dhcpAddr, req, 300*time.Millisecond); m != nil {
		t.Errorf("REQUEST on the DHCP port answered: %s", m.Summary())
	}
	m := exchange(t, pxeAddr, req, 10*time.Second)
	if m == nil || m.MessageType() != dhcpv4.MessageTypeAck || m.BootFileName != "ipxe.efi" {
		t.Fatalf("REQUEST on the PXE port: got %v, want an ACK naming ipxe.efi", m)
	}

	// An architecture there is no boot file for gets nothing.
	arm := discover(t, "52:54:00:aa:bb:cd", pxeClient(11)...)
	if m := exchange(t, dhcpAddr, arm, 300*time.Millisecond); m != nil {
		t.Errorf("arm64 client answered: %s", m.Summary())
	}
}

func TestTFTP(t *testing.T) {
	r := start(t)
	c, err := tftp.NewClient(r.l.TFTP.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(5 * time.Second)
	wt, err := c.Receive("undionly.kpxe", "octet")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := wt.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("undionly.kpxe"), 300)
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("undionly.kpxe over TFTP: %d bytes, want %d", got.Len(), len(want))
	}
	r.log.wait(t, map[string]any{"msg": "netboot: tftp: sent", "file": "undionly.kpxe", "bytes": float64(len(want))})

	// boot.ipxe sends TFTP clients on to the HTTP server, which makes the
	// script for their MAC.
	wt, err = c.Receive("boot.ipxe", "octet")
	if err != nil {
		t.Fatal(err)
	}
	got.Reset()
	if _, err := wt.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	if want := "#!ipxe\nchain " + r.http + "boot.ipxe?mac=${netX/mac:hexhyp}\n"; got.String() != want {
		t.Errorf("boot.ipxe over TFTP = %q, want %q", got.String(), want)
	}

	for _, bad := range []string{"../../etc/passwd", "missing"} {
		if wt, err := c.Receive(bad, "octet"); err == nil {
			_, err = wt.WriteTo(io.Discard)
			if err == nil {
				t.Errorf("TFTP served %q", bad)
			}
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}

func TestHTTP(t *testing.T) {
	r := start(t)
	// In this order: the MAC learned last for 127.0.0.1 is checked below.
	for _, c := range []struct{ mac, want string }{
		{"52:54:00:aa:bb:cc", "kernel vmlinuz initrd=initrd console=ttyS0 gridnode.hostname=n1 gridnode.farm=7 gridnode.boot=pxe\n"},
		{"52-54-00-99-99-99", "kernel vmlinuz initrd=initrd console=ttyS0 gridnode.net=dhcp gridnode.farm=42 gridnode.boot=pxe\n"},
	} {
		mac, want := c.mac, c.want
		s := get(t, r.http+"boot.ipxe?mac="+mac)
		if !strings.HasPrefix(s, "#!ipxe\n") || !strings.Contains(s, want) || !strings.Contains(s, "\ninitrd initrd\nboot\n") {
			t.Errorf("boot.ipxe for %s:\n%s\nwant kernel line %q", mac, s, want)
		}
	}
	if s := get(t, r.http+"boot.ipxe"); !strings.Contains(s, "chain boot.ipxe?mac=${netX/mac:hexhyp}") {
		t.Errorf("boot.ipxe without a MAC does not ask for it:\n%s", s)
	}
	if s := get(t, r.http+"vmlinuz"); s != strings.Repeat("kernel", 300) {
		t.Errorf("vmlinuz over HTTP: %d bytes", len(s))
	}
	// The client fetched its script as 52:54:00:99:99:99 last, so its
	// kernel download is logged under that MAC.
	r.log.wait(t, map[string]any{"msg": "netboot: http: sent", "file": "vmlinuz", "mac": "52:54:00:99:99:99", "status": float64(200)})
	if resp, err := http.Get(r.http + "boot.ipxe?mac=nope"); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad MAC: %v %v, want 400", resp.Status, err)
	}
}

// A guest booted end to end from the server's HTTP (QEMU's iPXE sent to
// boot.ipxe at 10.0.2.2) is tested with the real image in
// tests/media_test.go (TestNetbootServer); TestPXEFlow boots through the
// server's proxyDHCP and TFTP too.
