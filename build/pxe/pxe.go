// Package pxe writes the PXE bundle of an image: a folder holding the kernel,
// the initramfs, Debian's iPXE binaries and an iPXE script, boot.ipxe, that
// names everything by relative path. Because nothing in it names a server,
// the folder boots as it is from any TFTP or HTTP server whose DHCP bootfile
// points at boot.ipxe (or at one of the iPXE binaries, which then load it).
package pxe

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gridnode/gridnode/build/media"
)

// Names of the files in a PXE bundle.
const (
	Kernel   = "vmlinuz"
	Initrd   = "initrd"
	IPXEEFI  = "ipxe.efi"      // UEFI clients (DHCP option 93 = 7 or 9)
	Undionly = "undionly.kpxe" // BIOS clients (DHCP option 93 = 0)
	Script   = "boot.ipxe"
)

// BootKey is appended to the command line so the node knows it booted over
// the network (config key "boot").
const BootKey = "gridnode.boot=pxe"

// Write writes the PXE bundle for in to dir, creating dir if needed. Every
// file's modification time is in.Epoch, so two runs with the same inputs give
// the same folder.
func Write(in media.Input, dir string) error {
	copies := []struct{ src, name, what string }{
		{in.Kernel, Kernel, "kernel"},
		{in.Initrd, Initrd, "initramfs"},
		{in.IPXEEFI, IPXEEFI, "iPXE for UEFI (Debian package ipxe: " + media.DebIPXEEFI + ")"},
		{in.Undionly, Undionly, "iPXE for BIOS (Debian package ipxe: " + media.DebUndionly + ")"},
	}
	for _, c := range copies {
		if c.src == "" {
			return fmt.Errorf("pxe: no %s given; the builder must set it in media.Input", c.what)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pxe: %w", err)
	}
	for _, c := range copies {
		if err := copyFile(c.src, filepath.Join(dir, c.name)); err != nil {
			return fmt.Errorf("pxe: %s: %w", c.what, err)
		}
	}
	script := filepath.Join(dir, Script)
	if err := os.WriteFile(script, BootScript("", in.Cmdline), 0o644); err != nil {
		return fmt.Errorf("pxe: %w", err)
	}
	for _, name := range []string{Kernel, Initrd, IPXEEFI, Undionly, Script, "."} {
		if err := os.Chtimes(filepath.Join(dir, name), in.Epoch, in.Epoch); err != nil {
			return fmt.Errorf("pxe: %w", err)
		}
	}
	return nil
}

// BootScript returns an iPXE script that boots the kernel and initramfs found
// at base (a URL or path prefix ending in "/", or "" for paths relative to
// the script itself) with cmdline plus BootKey.
//
// The kernel line names its initrd (initrd=initrd): iPXE versions before
// about 1.21 do not hand an initrd to a UEFI kernel's EFI stub otherwise, and
// QEMU's own iPXE ROM is one of them.
func BootScript(base, cmdline string) []byte {
	var b bytes.Buffer
	b.WriteString("#!ipxe\n")
	fmt.Fprintf(&b, "kernel %s%s initrd=%s", base, Kernel, Initrd)
	if c := strings.TrimSpace(cmdline); c != "" {
		b.WriteString(" " + c)
	}
	b.WriteString(" " + BootKey + "\n")
	fmt.Fprintf(&b, "initrd %s%s\n", base, Initrd)
	b.WriteString("boot\n")
	return b.Bytes()
}

// ParseCmdline returns the image's command line from a boot.ipxe written by
// Write: the kernel line's arguments without the initrd= and BootKey that
// BootScript adds. The netboot server uses it as the base command line it
// extends per machine.
func ParseCmdline(script []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(script))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "kernel" {
			continue
		}
		var args []string
		for _, a := range f[2:] {
			if a == "initrd="+Initrd || a == BootKey {
				continue
			}
			args = append(args, a)
		}
		return strings.Join(args, " "), nil
	}
	return "", fmt.Errorf("pxe: %s has no kernel line; rebuild the image with --format pxe", Script)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}
