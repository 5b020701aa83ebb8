package cli

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridnode/gridnode/grid/farm"
	"github.com/gridnode/gridnode/grid/netboot"
	"github.com/gridnode/gridnode/upgrade/doc"
)

func newNetbootCmd() *cobra.Command {
	var (
		image, config, advertise, httpAddr, tftpAddr, dhcpAddr, pxeAddr, iface string
		dhcp, verbose                                                          bool
		channel, registrar, cache                                              string
		releaseKeys                                                            []string
		poll                                                                   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "netboot --image DIR",
		Short: "Serve a PXE image to a farm's machines (proxyDHCP, TFTP, HTTP)",
		Long: `netboot serves a folder made by "gridnode build --format pxe" to machines
booting from the network. With --dhcp it answers PXE clients beside the farm's
own DHCP server (proxyDHCP: no addresses handed out), sends BIOS clients
undionly.kpxe and UEFI clients ipxe.efi over TFTP, then iPXE a boot.ipxe over
HTTP with the command line --config gives the machine's MAC address:

  default: {farm: 42, cmdline: "gridnode.net=dhcp"}
  machines:
    "52:54:00:12:34:56": {farm: 7}

Without --dhcp, point the farm's DHCP bootfile at http://ADDR:PORT/boot.ipxe
(or at ipxe.efi / undionly.kpxe on this host's TFTP).

With --channel NAME --registrar URL --release-key KEY it follows a release
channel: it pulls the release the channel names (its PXE kernel and
initramfs, verified against the signed release document) into --cache, and
sends each machine the release its wave allows. A machine is found by its MAC
among the registrar's nodes of the configuration's farms; one outside the
rollout, one the registrar does not know yet, and one whose trial of the
channel's version failed (rolled back) boot the previous release, or --image
when the channel named none before.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if image == "" {
				return fmt.Errorf("netboot: --image DIR is required (a folder made by gridnode build --format pxe)")
			}
			var cfg netboot.Config
			if config != "" {
				var err error
				if cfg, err = netboot.LoadConfig(config); err != nil {
					return err
				}
			}
			var adv net.IP
			if advertise != "" {
				if adv = net.ParseIP(advertise).To4(); adv == nil {
					return fmt.Errorf("netboot: --advertise %q: want this host's IPv4 address on the farm network", advertise)
				}
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			s, err := netboot.New(image, cfg, adv, log)
			if err != nil {
				return err
			}
			if channel != "" {
				keys, err := doc.ParsePublicKeys(releaseKeys)
				if err != nil {
					return fmt.Errorf("netboot: --release-key: %w", err)
				}
				if cache == "" {
					d, err := os.UserCacheDir()
					if err != nil {
						return fmt.Errorf("netboot: --cache: %w", err)
					}
					cache = filepath.Join(d, "gridnode", "netboot")
				}
				if err := s.FollowChannel(netboot.ChannelOptions{Registrar: farm.ResolveRegistrar(registrar), Channel: channel,
					Keys: keys, Cache: cache, Poll: poll}); err != nil {
					return err
				}
			}
			addrs := netboot.Addrs{HTTP: httpAddr, TFTP: tftpAddr, Interface: iface}
			if dhcp {
				addrs.DHCP, addrs.PXE = dhcpAddr, pxeAddr
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return s.Run(ctx, addrs)
		},
	}
	f := cmd.Flags()
	f.StringVar(&image, "image", "", "PXE bundle folder (gridnode build --format pxe)")
	f.StringVar(&config, "config", "", "YAML file with the command line per MAC address and by default")
	f.StringVar(&advertise, "advertise", "", "IPv4 address clients reach this host at (required with --dhcp)")
	f.StringVar(&httpAddr, "listen-http", ":8081", "HTTP listen address (empty: no HTTP)")
	f.StringVar(&tftpAddr, "listen-tftp", ":69", "TFTP listen address (empty: no TFTP)")
	f.BoolVar(&dhcp, "dhcp", false, "answer PXE clients as a proxyDHCP server")
	f.StringVar(&dhcpAddr, "listen-dhcp", ":67", "proxyDHCP listen address, with --dhcp")
	f.StringVar(&pxeAddr, "listen-pxe", ":4011", "PXE boot server listen address, with --dhcp")
	f.StringVar(&iface, "interface", "", "network interface for proxyDHCP (default: all)")
	f.BoolVarP(&verbose, "verbose", "v", false, "also log DHCP requests not answered")
	f.StringVar(&channel, "channel", "", "follow this release channel: each machine gets the release its wave allows")
	f.StringVar(&registrar, "registrar", farm.DefaultRegistrar, "with --channel: the registrar URL or network name")
	f.StringArrayVar(&releaseKeys, "release-key", nil, "with --channel: release public key (ed25519:BASE64) releases must be signed by; repeatable, required")
	f.StringVar(&cache, "cache", "", "with --channel: folder of the pulled releases (default: the user's cache folder, gridnode/netboot)")
	f.DurationVar(&poll, "channel-poll", time.Minute, "with --channel: how often the channel and the farms' nodes are read")
	return cmd
}
