package netboot_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/build/pxe"
	"github.com/gridnode/gridnode/build/pxe/pxetest"
	"github.com/gridnode/gridnode/grid/netboot"
	"github.com/gridnode/gridnode/internal/need"
)

// The farm network inside the test's own network namespace.
const (
	farmIface  = "br0"
	serverIP   = "192.168.77.1"
	guestIP    = "192.168.77.100"
	helperEnv  = "GRIDNODE_NETBOOT_HELPER"
	farmSubnet = 24
)

// TestPXEFlow boots guests through the whole PXE path, on a bridge in
// a network namespace made by the test: OVMF's own PXE client (the NIC's
// iPXE ROM is disabled) gets its address from a stand-in for the farm's DHCP
// server and its boot file from gridnode's proxyDHCP, loads ipxe.efi over
// gridnode's TFTP, and iPXE, asking again, is sent to gridnode's HTTP for the
// boot.ipxe made for its MAC, the kernel and the initramfs. Then a BIOS
// guest, whose boot ROM is iPXE. Needs root (for
// the namespace and the tap device).
func TestPXEFlow(t *testing.T) {
	pxetest.Skip(t)
	need.Root(t, "a network namespace and a tap device")
	need.Tool(t, "ip")
	need.File(t, media.DebIPXEEFI, "ipxe")
	uefi := pxetest.UEFI(t)
	dir := filepath.Join(t.TempDir(), "pxe")
	in := media.Input{
		Kernel: pxetest.Kernel(t), Initrd: pxetest.Initramfs(t),
		IPXEEFI: media.DebIPXEEFI, Undionly: media.DebUndionly,
		Cmdline: "console=ttyS0 panic=-1 no_timer_check", Epoch: time.Unix(0, 0),
	}
	if err := pxe.Write(in, dir); err != nil {
		t.Fatal(err)
	}
	const macUEFI, macBIOS = "52:54:00:77:00:64", "52:54:00:77:00:65"
	cfgPath := filepath.Join(t.TempDir(), "netboot.yaml")
	os.WriteFile(cfgPath, []byte(`default: {farm: 5, cmdline: "gridnode.test=pxe-flow"}`+"\n"), 0o644)

	ns := fmt.Sprintf("gridnode-pxe-%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up")
	ip("-n", ns, "link", "add", farmIface, "type", "bridge")
	ip("-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
	ip("-n", ns, "link", "set", "tap0", "master", farmIface)
	ip("-n", ns, "addr", "add", fmt.Sprintf("%s/%d", serverIP, farmSubnet), "dev", farmIface)
	ip("-n", ns, "link", "set", farmIface, "up")
	ip("-n", ns, "link", "set", "tap0", "up")

	// The servers run in a child process inside the namespace: this test
	// binary again, running TestNetbootHelper. Its log comes back as JSON
	// lines on stdout.
	helper := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestNetbootHelper$", "-test.v")
	helper.Env = append(os.Environ(), helperEnv+"="+dir+"|"+cfgPath)
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	rec := &logRecorder{changed: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue // go test's own output
			}
			t.Logf("server: %s", sc.Bytes())
			rec.mu.Lock()
			rec.records = append(rec.records, m)
			rec.mu.Unlock()
			select {
			case rec.changed <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		helper.Process.Signal(syscall.SIGTERM)
		helper.Wait()
		wg.Wait()
	})
	rec.wait(t, map[string]any{"msg": "netboot: serving PXE"})
	rec.wait(t, map[string]any{"msg": "farm dhcp: serving"})

	bootfile := func(mac string) string { return "http://" + serverIP + ":8081/boot.ipxe?mac=" + mac }
	want := regexp.MustCompile(`^cmdline: .*gridnode.test=pxe-flow gridnode.farm=5 gridnode.boot=pxe`)
	t.Run("uefi", func(t *testing.T) {
		line := pxetest.BootIn(t, []string{"ip", "netns", "exec", ns}, append(uefi,
			"-netdev", "tap,id=n,ifname=tap0,script=no,downscript=no",
			// No option ROM: the firmware's own PXE client, not iPXE, starts.
			"-device", "virtio-net-pci,netdev=n,romfile=,mac="+macUEFI,
			"-boot", "n",
		), want, 4*time.Minute)
		t.Logf("guest: %s", line)
		rec.wait(t, map[string]any{"msg": "netboot: dhcp: offer", "mac": macUEFI, "bootfile": "ipxe.efi"})
		rec.wait(t, map[string]any{"msg": "netboot: tftp: sent", "file": "ipxe.efi", "mac": macUEFI})
		rec.wait(t, map[string]any{"msg": "netboot: dhcp: offer", "mac": macUEFI, "bootfile": bootfile(macUEFI)})
		rec.wait(t, map[string]any{"msg": "netboot: http: sent boot script", "mac": macUEFI})
		rec.wait(t, map[string]any{"msg": "netboot: http: sent", "mac": macUEFI, "file": "initrd", "status": float64(200)})
	})
	// On BIOS, QEMU's NIC boot ROM is iPXE itself: the proxyDHCP sends it
	// straight to HTTP.
	t.Run("bios", func(t *testing.T) {
		line := pxetest.BootIn(t, []string{"ip", "netns", "exec", ns}, []string{
			"-netdev", "tap,id=n,ifname=tap0,script=no,downscript=no",
			"-device", "virtio-net-pci,netdev=n,mac=" + macBIOS,
			"-boot", "n",
		}, want, 4*time.Minute)
		t.Logf("guest: %s", line)
		rec.wait(t, map[string]any{"msg": "netboot: dhcp: offer", "mac": macBIOS, "bootfile": bootfile(macBIOS)})
		rec.wait(t, map[string]any{"msg": "netboot: http: sent", "mac": macBIOS, "file": "initrd", "status": float64(200)})
	})
}

// TestNetbootHelper is the server side of TestPXEFlow, run by it in the
// network namespace; it does nothing otherwise.
func TestNetbootHelper(t *testing.T) {
	arg := os.Getenv(helperEnv)
	if arg == "" {
		t.Skip("run by TestPXEFlow")
	}
	var dir, cfgPath string
	fmt.Sscanf(regexp.MustCompile(`\|`).ReplaceAllString(arg, " "), "%s %s", &dir, &cfgPath)
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()

	// The farm's DHCP server: hands the guest an address and nothing else.
	conn, err := server4.NewIPv4UDPConn(farmIface, &net.UDPAddr{Port: dhcpv4.ServerPort})
	if err != nil {
		t.Fatal(err)
	}
	farm, err := server4.NewServer("", nil, func(c net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4) {
		typ := dhcpv4.MessageTypeOffer
		switch req.MessageType() {
		case dhcpv4.MessageTypeDiscover:
		case dhcpv4.MessageTypeRequest:
			typ = dhcpv4.MessageTypeAck
		default:
			return
		}
		reply, err := dhcpv4.NewReplyFromRequest(req,
			dhcpv4.WithMessageType(typ),
			dhcpv4.WithYourIP(net.ParseIP(guestIP)),
			dhcpv4.WithNetmask(net.CIDRMask(farmSubnet, 32)),
			dhcpv4.WithLeaseTime(3600),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(serverIP))),
		)
		if err != nil {
			return
		}
		c.WriteTo(reply.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort})
		log.Info("farm dhcp: "+typ.String(), "mac", req.ClientHWAddr.String())
	}, server4.WithConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	go farm.Serve()
	defer farm.Close()
	log.Info("farm dhcp: serving")

	cfg, err := netboot.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := netboot.New(dir, cfg, net.ParseIP(serverIP), log)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(ctx, netboot.Addrs{
		HTTP: serverIP + ":8081", TFTP: serverIP + ":69",
		DHCP: ":67", PXE: ":4011", Interface: farmIface,
	})
	if err != nil {
		t.Fatal(err)
	}
}
