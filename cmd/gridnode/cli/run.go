package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gridnode/gridnode/qemu"
)

func newRunCmd() *cobra.Command {
	var (
		o         qemu.Options
		disks     []string
		forwards  []string
		appendArg string
		registrar string
		iso, usb  string
		pxe       string
		pxeURL    string
		uefi      bool
	)
	c := &cobra.Command{
		Use:   "run [DIR]",
		Short: "Boot an image in QEMU with its console on this terminal",
		Long: `Boot the image in DIR (default out/, as written by gridnode build: vmlinuz,
initramfs.cpio.zst, cmdline) in QEMU, with the node's console on this terminal.
Ctrl-A X quits; Ctrl-A C switches to the QEMU monitor and back.

The node reaches services on this machine's loopback as 10.0.2.2, e.g.
--registrar http://10.0.2.2:8080. Disks made by --disk live in DIR/vm/diskN.img
and are kept between runs (the node keeps its identity); delete them for a
fresh node. The console is also logged to DIR/vm/console.log.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "out"
			if len(args) == 1 {
				dir = args[0]
			}
			for _, spec := range disks {
				d, err := qemu.ParseDisk(spec)
				if err != nil {
					return fmt.Errorf("run: --disk: %w", err)
				}
				d.Serial = fmt.Sprintf("GRIDNODE-DISK%d", len(o.Disks))
				o.Disks = append(o.Disks, d)
			}
			for _, f := range forwards {
				fw, err := parseForward(f)
				if err != nil {
					return err
				}
				o.Forwards = append(o.Forwards, fw)
			}
			var extra []string
			if appendArg != "" {
				extra = append(extra, appendArg)
			}
			if registrar != "" {
				extra = append(extra, "gridnode.registrar="+registrar)
			}
			media := 0
			for _, s := range []string{iso, usb, pxe, pxeURL} {
				if s != "" {
					media++
				}
			}
			if media > 1 {
				return errors.New("run: choose one of --iso, --usb, --pxe, --pxe-url")
			}
			if media == 1 && len(extra) > 0 {
				return errors.New("run: --append and --registrar change the kernel command line of a direct boot only; for --iso, --usb and --pxe, edit the medium's gridnode.conf")
			}
			var err error
			switch {
			case iso != "":
				o.Boot = qemu.CDROMBoot(iso)
			case usb != "":
				o.Boot = qemu.USBBoot(usb)
			case pxe != "":
				o.Boot = qemu.PXEBoot(pxe, "boot.ipxe")
			case pxeURL != "":
				o.Boot = qemu.PXEBoot("", pxeURL)
			default:
				o.Boot, err = qemu.KernelBootDir(dir, extra...)
				if err != nil {
					return fmt.Errorf("run: %w", err)
				}
				if !strings.Contains(o.Boot.Cmdline, "console=") {
					o.Boot.Cmdline += " console=ttyS0"
				}
				o.Boot.Cmdline = strings.TrimSpace(o.Boot.Cmdline)
			}
			if uefi {
				o.Firmware = qemu.UEFI
			}
			o.Dir = filepath.Join(dir, "vm")
			if media > 0 {
				if d, err := os.Stat(dir); err != nil || !d.IsDir() {
					o.Dir = "" // no image folder needed: a temporary one
				}
			}
			o.Interactive = true
			o.Stdin, o.Stdout, o.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()

			vm, err := qemu.Start(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("run: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "gridnode run: %s boot, %s, %s; Ctrl-A X quits; console log %s\r\n",
				o.Boot.Kind, o.Firmware, vm.Accel, vm.LogPath)
			for _, f := range o.Forwards {
				fmt.Fprintf(cmd.ErrOrStderr(), "gridnode run: guest port %d is %s\r\n", f.Guest, vm.HostAddr(f.Guest))
			}
			if err := vm.Wait(); err != nil {
				return fmt.Errorf("run: %w", err)
			}
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&o.CPUs, "cpus", 2, "virtual CPUs")
	f.IntVar(&o.Memory, "memory", 1024, "memory in MiB")
	f.StringArrayVar(&disks, "disk", nil, "add a disk SIZE[:ssd|hdd|nvme], e.g. 20G:ssd (repeatable)")
	f.StringArrayVar(&forwards, "forward", nil, "forward GUEST[:HOST] TCP port to 127.0.0.1 (repeatable; HOST free port when omitted)")
	f.StringVar(&appendArg, "append", "", "extra kernel command line")
	f.StringVar(&registrar, "registrar", "", "registrar URL for the node (adds gridnode.registrar=), e.g. http://10.0.2.2:8080")
	f.StringVar(&iso, "iso", "", "boot this ISO from a CD-ROM")
	f.StringVar(&usb, "usb", "", "boot this image (raw disk or hybrid ISO) as a USB stick")
	f.StringVar(&pxe, "pxe", "", "netboot: serve this folder over TFTP and boot its boot.ipxe")
	f.StringVar(&pxeURL, "pxe-url", "", "netboot from an iPXE script URL, e.g. http://10.0.2.2:8080/boot.ipxe (gridnode netboot)")
	f.BoolVar(&uefi, "uefi", false, "boot with UEFI firmware (OVMF) instead of BIOS")
	f.StringVar(&o.Accel, "accel", "", "kvm or tcg (default: kvm when it works; $"+qemu.AccelEnv+" overrides)")
	f.IntVar(&o.ExtraSerials, "serials", 0, "extra serial lines ttyS1.. as host ptys (QEMU prints their paths)")
	return c
}

// parseForward parses GUEST[:HOST].
func parseForward(s string) (qemu.Forward, error) {
	g, h, hasHost := strings.Cut(s, ":")
	var f qemu.Forward
	var err error
	if f.Guest, err = strconv.Atoi(g); err != nil || f.Guest <= 0 || f.Guest > 65535 {
		return f, fmt.Errorf("run: --forward %q: want GUEST[:HOST] ports, like 9100 or 9100:19100", s)
	}
	if hasHost {
		if f.Host, err = strconv.Atoi(h); err != nil || f.Host <= 0 || f.Host > 65535 {
			return f, fmt.Errorf("run: --forward %q: want GUEST[:HOST] ports, like 9100 or 9100:19100", s)
		}
	}
	return f, nil
}
