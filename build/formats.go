package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gridnode/gridnode/build/iso"
	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/build/pxe"
	"github.com/gridnode/gridnode/build/uki"
	"github.com/gridnode/gridnode/build/usb"
	"github.com/gridnode/gridnode/node/config"
)

// A FormatWriter turns the kernel-format parts into one boot medium in dir
// and returns the paths it wrote.
type FormatWriter func(in media.Input, dir string) ([]string, error)

// Formats are the output formats beyond "kernel", by name.
var Formats = map[string]FormatWriter{
	"uki": uki.Format,
	"iso": iso.Format,
	"usb": usb.Format,
	"pxe": pxeFormat,
}

// pxeFormat writes the PXE bundle into DIR/pxe.
func pxeFormat(in media.Input, dir string) ([]string, error) {
	d := filepath.Join(dir, "pxe")
	if err := pxe.Write(in, d); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, err
	}
	var l []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			l = append(l, filepath.Join(d, e.Name()))
		}
	}
	return l, nil
}

// FormatNames lists every format, sorted.
func FormatNames() []string {
	l := []string{"kernel"}
	for f := range Formats {
		l = append(l, f)
	}
	sort.Strings(l)
	return l
}

// bootFile is one boot-loader file the media writers need, taken from a
// Debian package.
type bootFile struct {
	pkg, path string
	dst       *string
}

// bootFiles extracts the boot-loader files from their Debian packages into
// the cache (once per package version) and records the packages as inputs.
// Only builds with a format beyond "kernel" call it.
func (b *builder) bootFiles(ctx context.Context, in *media.Input) error {
	for _, f := range []bootFile{
		{"systemd-boot-efi", media.DebEFIStub, &in.EFIStub},
		{"systemd-boot-efi", media.DebSDBoot, &in.SystemdBoot},
		{"isolinux", media.DebIsolinux, &in.Isolinux},
		{"isolinux", media.DebIsoHdpfx, &in.IsoHdpfx},
		{"syslinux-common", media.DebLdlinux, &in.Ldlinux},
		{"ipxe", media.DebIPXEEFI, &in.IPXEEFI},
		{"ipxe", media.DebUndionly, &in.Undionly},
	} {
		p, err := b.fetchDeb(ctx, f.pkg)
		if err != nil {
			return fmt.Errorf("%w (boot-loader file for the media formats)", err)
		}
		// Extracted once per package version: the cache path names it.
		dst := filepath.Join(b.o.Cache, "bootfiles", p.SHA256[:16], filepath.Base(f.path))
		if _, err := os.Stat(dst); err != nil {
			data, err := fileIn(p, strings.TrimPrefix(f.path, "/"))
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			tmp := dst + ".tmp"
			if err := os.WriteFile(tmp, data, 0o644); err != nil {
				return err
			}
			if err := os.Rename(tmp, dst); err != nil {
				return err
			}
		}
		*f.dst = dst
	}
	return nil
}

// mediaInput is what the format writers get: the kernel-format parts, the
// boot-loader files and the farmer-editable gridnode.conf.
func (b *builder) mediaInput(ctx context.Context) (media.Input, error) {
	in := media.Input{
		Kernel:  b.res.Kernel,
		Initrd:  b.res.Initramfs,
		Cmdline: b.res.Cmdline,
		Version: b.o.Spec.Version,
		Epoch:   b.o.Epoch,
		Config:  mediumConfig(b.o.Spec.Node),
	}
	return in, b.bootFiles(ctx, &in)
}

// mediumConfig is the gridnode.conf put on ISO and USB media: the settings a
// farmer changes, with the image's values, and the rest as comments.
func mediumConfig(n config.Node) []byte {
	var s strings.Builder
	s.WriteString(`# gridnode.conf — read by the node at boot. Edit it on the stick with any
# computer, or with: gridnode image set IMAGE key=value ...
# Keys are those of the kernel command line without "gridnode."; the kernel
# command line wins over this file. See README.md for every key.
`)
	kv := func(k, v string) {
		if v == "" {
			fmt.Fprintf(&s, "#%s=\n", k)
		} else {
			fmt.Fprintf(&s, "%s=%s\n", k, v)
		}
	}
	farm := ""
	if n.Farm != 0 {
		farm = fmt.Sprint(n.Farm)
	}
	kv("farm", farm)
	kv("registrar", n.Registrar)
	kv("net", n.Network)
	kv("net.iface", n.Iface)
	kv("location", n.Location)
	up := ""
	if n.Uptime != 0 {
		up = n.Uptime.D().String()
	}
	kv("uptime", up)
	kv("wipe", strings.Join(n.Wipe, ","))
	return []byte(s.String())
}
