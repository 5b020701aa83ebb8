package cli

import (
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gridnode/gridnode/grid/netboot"
)

func newNetbootCmd() *cobra.Command {
	var (
		image, config, advertise, httpAddr, tftpAddr, dhcpAddr, pxeAddr, iface string
		dhcp, verbose                                                          bool
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
(or at ipxe.efi / undionly.kpxe on this host's TFTP).`,
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
	return cmd
}
