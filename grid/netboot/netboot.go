// Package netboot serves a PXE bundle (build/pxe) to the machines of a farm:
// a proxyDHCP server that tells PXE clients where to boot from without
// handing out addresses (the farm's own DHCP server keeps doing that), a
// read-only TFTP server for the iPXE binaries, and an HTTP server for the
// kernel, the initramfs and a boot.ipxe generated per machine with the
// command line the configuration file gives its MAC address.
//
// A client's path: its firmware's PXE broadcasts DHCPDISCOVER with vendor
// class "PXEClient"; the proxyDHCP offer names undionly.kpxe (BIOS) or
// ipxe.efi (UEFI) on our TFTP server; iPXE starts, asks DHCP again with user
// class "iPXE" and is given http://ADVERTISE:PORT/boot.ipxe?mac=MAC; that
// script loads vmlinuz and initrd over HTTP, relative to itself, and boots.
// A client sent to boot.ipxe on TFTP (by the farm's own DHCP server) is
// chained to the same HTTP URL. Each step is logged with the client's MAC
// address where it is known (TFTP and HTTP see only an IP address; the MAC
// is the one last seen from that IP in DHCP or a boot.ipxe request).
//
// With FollowChannel, the server also follows a release channel and sends
// each machine the release its wave allows (channel.go).
package netboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/pin/tftp/v3"

	"github.com/gridnode/gridnode/build/pxe"
)

// Server serves one PXE bundle. Create it with New.
type Server struct {
	image     string
	root      *os.Root
	base      string // the image's command line, from its boot.ipxe
	config    Config
	advertise net.IP
	log       *slog.Logger

	// httpURL is the URL prefix iPXE clients are sent to, set by Serve
	// from the HTTP listener's port.
	httpURL string

	mu      sync.Mutex
	clients map[string]string // client IP → MAC, learned from DHCP and boot.ipxe

	// follow, when set, is the release channel followed (channel.go).
	follow *follower
}

// New checks that image is a PXE bundle and returns a server for it.
// advertise is the address clients reach this host at; it is required when
// serving DHCP (it goes into the offers) and may be nil otherwise.
func New(image string, cfg Config, advertise net.IP, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	script, err := os.ReadFile(filepath.Join(image, pxe.Script))
	if err != nil {
		return nil, fmt.Errorf("netboot: %w; --image must name a folder made by gridnode build --format pxe", err)
	}
	base, err := pxe.ParseCmdline(script)
	if err != nil {
		return nil, fmt.Errorf("netboot: %s: %w", image, err)
	}
	for _, f := range []string{pxe.Kernel, pxe.Initrd} {
		if _, err := os.Stat(filepath.Join(image, f)); err != nil {
			return nil, fmt.Errorf("netboot: image folder incomplete: %w", err)
		}
	}
	root, err := os.OpenRoot(image)
	if err != nil {
		return nil, fmt.Errorf("netboot: %w", err)
	}
	if advertise != nil && advertise.To4() == nil {
		return nil, fmt.Errorf("netboot: advertise address %s is not IPv4; PXE is IPv4 only", advertise)
	}
	return &Server{
		image:     image,
		root:      root,
		base:      base,
		config:    cfg,
		advertise: advertise.To4(),
		log:       log,
		clients:   map[string]string{},
	}, nil
}

// Listeners are the sockets Serve uses; a nil one is a service not run.
type Listeners struct {
	HTTP net.Listener
	TFTP net.PacketConn
	DHCP net.PacketConn // proxyDHCP on port 67: answers DHCPDISCOVER
	PXE  net.PacketConn // PXE boot server on port 4011: answers DHCPREQUEST
}

// Addrs are the addresses Run listens on; an empty one is a service not run.
type Addrs struct {
	HTTP, TFTP, DHCP, PXE string
	// Interface binds the DHCP sockets to one network interface, so that
	// broadcast replies leave by the farm's network; empty for all.
	Interface string
}

// Run listens on a's addresses and serves until ctx is done.
func (s *Server) Run(ctx context.Context, a Addrs) error {
	var l Listeners
	closeAll := func() {
		for _, c := range []io.Closer{l.HTTP, l.TFTP, l.DHCP, l.PXE} {
			if c != nil {
				c.Close()
			}
		}
	}
	var err error
	if a.HTTP != "" {
		if l.HTTP, err = net.Listen("tcp", a.HTTP); err != nil {
			return fmt.Errorf("netboot: http: %w", err)
		}
	}
	if a.TFTP != "" {
		if l.TFTP, err = net.ListenPacket("udp4", a.TFTP); err != nil {
			closeAll()
			return fmt.Errorf("netboot: tftp: %w (port 69 needs root or CAP_NET_BIND_SERVICE)", err)
		}
	}
	for _, d := range []struct {
		addr string
		conn *net.PacketConn
	}{{a.DHCP, &l.DHCP}, {a.PXE, &l.PXE}} {
		if d.addr == "" {
			continue
		}
		ua, err := net.ResolveUDPAddr("udp4", d.addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("netboot: dhcp address %q: %w", d.addr, err)
		}
		c, err := server4.NewIPv4UDPConn(a.Interface, ua)
		if err != nil {
			closeAll()
			return fmt.Errorf("netboot: dhcp on %s: %w (ports 67 and 4011 need root or CAP_NET_BIND_SERVICE)", d.addr, err)
		}
		*d.conn = c
	}
	return s.Serve(ctx, l)
}

// Serve serves on l until ctx is done, then closes l's sockets. An error
// from one service stops them all.
func (s *Server) Serve(ctx context.Context, l Listeners) error {
	if (l.DHCP != nil || l.PXE != nil) && s.advertise == nil {
		return errors.New("netboot: proxyDHCP needs the address clients reach this host at; pass --advertise IP")
	}
	if l.HTTP != nil {
		port := l.HTTP.Addr().(*net.TCPAddr).Port
		host := "127.0.0.1"
		if s.advertise != nil {
			host = s.advertise.String()
		}
		s.httpURL = "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	run := func(name string, serve func() error, stop func()) {
		wg.Add(2)
		go func() {
			defer wg.Done()
			err := serve()
			if ctx.Err() == nil {
				errc <- fmt.Errorf("netboot: %s: %w", name, err)
				cancel()
			}
		}()
		go func() {
			defer wg.Done()
			<-ctx.Done()
			stop()
		}()
	}
	if l.HTTP != nil {
		hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 30 * time.Second}
		run("http", func() error { return hs.Serve(l.HTTP) }, func() { hs.Close() })
		s.log.Info("netboot: serving HTTP", "addr", l.HTTP.Addr().String(), "url", s.httpURL, "image", s.image)
	}
	if s.follow != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.follow.run(ctx) }()
		s.log.Info("netboot: following channel", "channel", s.follow.o.Channel, "registrar", s.follow.o.Registrar, "farms", s.follow.farms)
	}
	if l.TFTP != nil {
		ts := tftp.NewServer(s.tftpRead, nil)
		run("tftp", func() error { return ts.Serve(l.TFTP) }, ts.Shutdown)
		s.log.Info("netboot: serving TFTP", "addr", l.TFTP.LocalAddr().String())
	}
	for _, d := range []struct {
		name string
		conn net.PacketConn
		pxe  bool
	}{{"proxyDHCP", l.DHCP, false}, {"PXE", l.PXE, true}} {
		if d.conn == nil {
			continue
		}
		pxePort := d.pxe
		conn := d.conn
		ds, err := server4.NewServer("", nil, func(c net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
			s.handleDHCP(c, peer, m, pxePort)
		}, server4.WithConn(conn))
		if err != nil {
			cancel()
			return fmt.Errorf("netboot: %s: %w", d.name, err)
		}
		run(d.name, ds.Serve, func() { ds.Close() })
		s.log.Info("netboot: serving "+d.name, "addr", conn.LocalAddr().String(), "advertise", s.advertise.String())
	}
	<-ctx.Done()
	wg.Wait()
	s.root.Close()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func (s *Server) learn(ip net.IP, mac string) {
	if ip == nil || ip.IsUnspecified() {
		return
	}
	s.mu.Lock()
	s.clients[ip.String()] = mac
	s.mu.Unlock()
}

// macOf returns the MAC last seen at ip, from DHCP or boot.ipxe requests
// or else the kernel's neighbour table, or "" when it is not known.
func (s *Server) macOf(ip string) string {
	s.mu.Lock()
	mac := s.clients[ip]
	s.mu.Unlock()
	if mac == "" {
		mac = arpLookup(arpTable, ip)
	}
	return mac
}

// arpTable is the kernel's IPv4 neighbour table. A PXE client that took its
// address from the farm's DHCP server never told us its IP, but it has
// talked to us by the time it asks for a file, so the kernel knows its MAC.
const arpTable = "/proc/net/arp"

func arpLookup(table, ip string) string {
	b, err := os.ReadFile(table)
	if err != nil {
		return ""
	}
	// IP address  HW type  Flags  HW address  Mask  Device
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == ip && f[3] != "00:00:00:00:00:00" {
			return f[3]
		}
	}
	return ""
}

// Client system architectures (DHCP option 93, RFC 4578) we have a boot
// file for.
const (
	archBIOS    = iana.INTEL_X86PC
	archEFIx64  = iana.EFI_X86_64
	archEFIBC   = iana.EFI_BC
	pxeClass    = "PXEClient"
	ipxeClass   = "iPXE"
	pxeVendorOp = 6 // PXE_DISCOVERY_CONTROL
)

// Reply is the proxyDHCP answer to req, or nil when req is not ours to
// answer: not from a PXE client, not a DISCOVER (or, on the PXE port 4011,
// a REQUEST), or from an architecture we have no boot file for. It offers no
// address: only the boot server (siaddr, option 54) and the boot file.
func (s *Server) Reply(req *dhcpv4.DHCPv4, pxePort bool) (*dhcpv4.DHCPv4, string) {
	if req.OpCode != dhcpv4.OpcodeBootRequest || !strings.HasPrefix(req.ClassIdentifier(), pxeClass) {
		return nil, "not a PXE client"
	}
	var typ dhcpv4.MessageType
	switch mt := req.MessageType(); {
	case mt == dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case mt == dhcpv4.MessageTypeRequest && pxePort:
		typ = dhcpv4.MessageTypeAck
	default:
		return nil, "message " + mt.String() + " is not for proxyDHCP"
	}
	arch := archBIOS
	if a := req.ClientArch(); len(a) > 0 {
		arch = a[0]
	}
	var file string
	switch {
	case bytes.Contains(req.GetOneOption(dhcpv4.OptionUserClassInformation), []byte(ipxeClass)):
		if s.httpURL == "" {
			return nil, "iPXE client but no HTTP server to send it to (run with --listen-http)"
		}
		file = s.httpURL + pxe.Script + "?mac=" + req.ClientHWAddr.String()
	case arch == archBIOS:
		file = pxe.Undionly
	case arch == archEFIx64 || arch == archEFIBC:
		file = pxe.IPXEEFI
	default:
		return nil, "no boot file for client architecture " + arch.String()
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithYourIP(net.IPv4zero),
		dhcpv4.WithServerIP(s.advertise),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.advertise)),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(pxeClass)),
		// Boot from the file named here, skipping PXE boot server
		// discovery and its menu.
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, []byte{pxeVendorOp, 1, 8, 255})),
		dhcpv4.WithOption(dhcpv4.OptBootFileName(file)),
	}
	if guid := req.GetOneOption(dhcpv4.OptionClientMachineIdentifier); guid != nil {
		// Some firmware ignores offers that do not echo its GUID.
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, guid)))
	}
	reply, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		return nil, err.Error()
	}
	reply.BootFileName = file
	return reply, ""
}

func (s *Server) handleDHCP(conn net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4, pxePort bool) {
	mac := req.ClientHWAddr.String()
	reply, why := s.Reply(req, pxePort)
	if reply == nil {
		s.log.Debug("netboot: dhcp: not answered", "mac", mac, "type", req.MessageType().String(), "reason", why)
		return
	}
	s.learn(req.ClientIPAddr, mac)
	if _, err := conn.WriteTo(reply.ToBytes(), peer); err != nil {
		s.log.Warn("netboot: dhcp: send reply failed", "mac", mac, "to", peer.String(), "err", err)
		return
	}
	arch := "bios"
	if a := req.ClientArch(); len(a) > 0 {
		arch = a[0].String()
	}
	s.log.Info("netboot: dhcp: "+strings.ToLower(reply.MessageType().String()), "mac", mac, "arch", arch, "bootfile", reply.BootFileName, "to", peer.String())
}

// cleanName turns a requested file name into one inside the image folder,
// or "" when it tries to leave it.
func cleanName(name string) string {
	name = strings.TrimLeft(strings.ReplaceAll(name, "\\", "/"), "/")
	c := path.Clean(name)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return ""
	}
	return c
}

// tftpRead serves one TFTP read request from the image folder.
func (s *Server) tftpRead(filename string, rf io.ReaderFrom) error {
	client := ""
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		a := ot.RemoteAddr()
		client = a.IP.String()
	}
	mac := s.macOf(client)
	name := cleanName(filename)
	if name == "" {
		s.log.Warn("netboot: tftp: refused", "client", client, "mac", mac, "file", filename)
		return fmt.Errorf("%s: outside the image folder", filename)
	}
	if name == pxe.Script && s.httpURL != "" && s.advertise != nil {
		// Send TFTP clients on to HTTP, where boot.ipxe is made per machine.
		script := fmt.Sprintf("#!ipxe\nchain %s%s?mac=${netX/mac:hexhyp}\n", s.httpURL, pxe.Script)
		if ot, ok := rf.(tftp.OutgoingTransfer); ok {
			ot.SetSize(int64(len(script)))
		}
		n, err := rf.ReadFrom(strings.NewReader(script))
		if err != nil {
			return err
		}
		s.log.Info("netboot: tftp: sent chain to HTTP", "client", client, "mac", mac, "file", name, "bytes", n)
		return nil
	}
	f, err := s.root.Open(name)
	if err != nil {
		s.log.Warn("netboot: tftp: not found", "client", client, "mac", mac, "file", filename)
		return fmt.Errorf("%s: not found", name)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a file", name)
	}
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		ot.SetSize(fi.Size())
	}
	start := time.Now()
	n, err := rf.ReadFrom(f)
	if err != nil && n == 0 {
		// UEFI PXE clients ask for the size first and abort.
		s.log.Debug("netboot: tftp: transfer aborted before data", "client", client, "mac", mac, "file", name, "err", err)
		return err
	}
	if err != nil {
		s.log.Warn("netboot: tftp: transfer failed", "client", client, "mac", mac, "file", name, "bytes", n, "err", err)
		return err
	}
	s.log.Info("netboot: tftp: sent", "client", client, "mac", mac, "file", name, "bytes", n, "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// Handler serves the image folder over HTTP, with boot.ipxe generated per
// client: GET /boot.ipxe?mac=MAC returns the iPXE script booting that
// machine with its command line; without mac, a script that asks again
// with the MAC of the interface iPXE booted from.
func (s *Server) Handler() http.Handler {
	files := http.FileServerFS(s.root.FS())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, _, _ := net.SplitHostPort(r.RemoteAddr)
		if r.URL.Path == "/"+pxe.Script {
			s.serveScript(w, r, client)
			return
		}
		cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		if rel, ok := strings.CutPrefix(r.URL.Path, releasePrefix); ok && s.follow != nil {
			s.serveRelease(cw, r, rel)
		} else {
			files.ServeHTTP(cw, r)
		}
		s.log.Info("netboot: http: sent", "client", client, "mac", s.macOf(client), "file", strings.TrimPrefix(r.URL.Path, "/"),
			"status", cw.status, "bytes", cw.n, "duration", time.Since(start).Round(time.Millisecond).String())
	})
}

func (s *Server) serveScript(w http.ResponseWriter, r *http.Request, client string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	q := r.URL.Query().Get("mac")
	if q == "" {
		// netX is the interface iPXE last opened: the one it booted from.
		fmt.Fprintf(w, "#!ipxe\nchain %s?mac=${netX/mac:hexhyp}\n", pxe.Script)
		s.log.Info("netboot: http: asked client for its MAC", "client", client)
		return
	}
	mac, err := net.ParseMAC(q)
	if err != nil {
		http.Error(w, fmt.Sprintf("mac=%q: not a MAC address", q), http.StatusBadRequest)
		return
	}
	if ip := net.ParseIP(client); ip != nil {
		s.learn(ip, mac.String())
	}
	base, prefix, attrs := s.base, "", []any{}
	if s.follow != nil {
		ch := s.follow.releaseFor(mac, time.Now())
		if ch.r != nil {
			base, prefix = ch.r.cmdline, releasePrefix[1:]+ch.r.hex()+"/pxe/"
			attrs = append(attrs, "version", ch.r.Version, "release", ch.r.Digest)
		}
		attrs = append(attrs, "why", ch.why)
	}
	cmdline := s.config.For(mac).cmdline(base)
	w.Write(pxe.BootScript(prefix, cmdline))
	s.log.Info("netboot: http: sent boot script", append([]any{"client", client, "mac", mac.String(), "cmdline", cmdline}, attrs...)...)
}

// releasePrefix is where the releases taken from a channel are served:
// /release/HEX/pxe/vmlinuz and initrd, HEX the release's digest.
const releasePrefix = "/release/"

// serveRelease serves the kernel or initramfs of a release in the cache.
func (s *Server) serveRelease(w http.ResponseWriter, r *http.Request, rel string) {
	dir, file := path.Split(rel)
	hex := strings.TrimSuffix(dir, "/pxe/")
	if !digestRE.MatchString("sha256:"+hex) || (file != pxe.Kernel && file != pxe.Initrd) {
		http.NotFound(w, r)
		return
	}
	f, err := s.follow.root.Open(path.Join(hex, "pxe", file))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, file, fi.ModTime(), f)
}

type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}
