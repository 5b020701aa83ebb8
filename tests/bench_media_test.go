//go:build bench

package tests

// The boot-media benchmark of issue 5 (go test -tags bench -run
// TestBenchMedia ./tests/): time and size of each format gridnode writes,
// and of all of them together, from a warm cache, beside the same media made
// from the same inputs with the usual tools (objcopy for the UKI, mkfs.vfat
// and mtools for the EFI FAT image, xorriso for the ISO 9660 images, cp for
// the PXE folder), in the same run.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridnode/gridnode/build"
	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/build/uki"
	"github.com/gridnode/gridnode/upgrade/layout"
)

const mediaBenchRuns = 5

func TestBenchMedia(t *testing.T) {
	for _, tool := range []string{"xorriso", "mkfs.vfat", "mmd", "mcopy", "objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (make deps installs xorriso dosfstools mtools; objcopy is binutils)", tool)
		}
	}
	formats := build.FormatNames() // kernel iso pxe uki usb
	out := filepath.Join(t.TempDir(), "warm")
	r := buildTo(t, "node", out, formats...) // warms every cache

	// The writers' inputs, as the builder gave them: its kernel, initramfs
	// and command line, the boot-loader files it took from Debian into the
	// cache, and the gridnode.conf it put on the media.
	in := *r.Media

	kinds := []string{"uki", "iso", "usb", "pxe"}
	type row struct {
		ours, tools         []time.Duration
		oursSize, toolsSize int64
	}
	rows := map[string]*row{}
	for _, f := range append(kinds, "all") {
		rows[f] = &row{}
	}
	// measure times write into a new folder, from a clean start: the
	// previous runs' files removed and the dirty pages written back, so one
	// run does not pay for another's writeback. The time is until the
	// writer returns (the files are in the page cache), for both columns.
	measure := func(write func(dir string)) (time.Duration, int64) {
		dir, err := os.MkdirTemp(t.TempDir(), "run")
		if err != nil {
			t.Fatal(err)
		}
		syscall.Sync()
		start := time.Now()
		write(dir)
		d := time.Since(start)
		n := dirBytes(t, dir)
		os.RemoveAll(dir)
		return d, n
	}
	for i := 0; i < mediaBenchRuns; i++ {
		// gridnode's writers, one format at a time, then all in one folder;
		// the same with the tools.
		for _, f := range append(kinds, "all") {
			fs := []string{f}
			if f == "all" {
				fs = kinds
			}
			d, n := measure(func(dir string) {
				for _, f := range fs {
					if _, err := build.Formats[f](in, dir); err != nil {
						t.Fatal(err)
					}
				}
			})
			rows[f].ours, rows[f].oursSize = append(rows[f].ours, d), n
			d, n = measure(func(dir string) { toolsWrite(t, in, dir, fs...) })
			rows[f].tools, rows[f].toolsSize = append(rows[f].tools, d), n
		}
	}

	// The whole build from the spec, warm: kernel format only, and every
	// format (what `gridnode build --format kernel,uki,iso,usb,pxe` costs).
	var kernelOnly, all []time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		buildTo(t, "node", filepath.Join(t.TempDir(), "k"), "kernel")
		kernelOnly = append(kernelOnly, time.Since(start))
		start = time.Now()
		buildTo(t, "node", filepath.Join(t.TempDir(), "a"), formats...)
		all = append(all, time.Since(start))
	}
	kernelSize := fileBytes(t, r.Kernel) + fileBytes(t, r.Initramfs)
	load, _ := os.ReadFile("/proc/loadavg")

	var b strings.Builder
	fmt.Fprintf(&b, `### Boot media: gridnode's writers beside xorriso + mkfs.vfat + mtools (issue 5)

Command: `+"`make bench`"+` (`+"`go test -tags bench -run TestBenchMedia ./tests/`"+`)
Machine: %s; load average at the end %s (other work on the machine slows both columns alike)

Same inputs for both columns: the kernel, initramfs (%s together) and command line of images/node.yaml, Debian's boot-loader files, and the image's gridnode.conf. The tools: objcopy adds the UKI sections to systemd's stub; mkfs.vfat, mmd and mcopy make the EFI FAT image (systemd-boot, loader.conf and entries, the release slots of upgrade/layout: one on the ISO, two of 64 MiB on the USB image); xorriso -as mkisofs makes the hybrid ISO (isohybrid MBR, El Torito BIOS + EFI) and the USB image (the same with the FAT image appended as a GPT partition); cp and a script for PXE. Times are medians of %d runs, the two columns interleaved, each from a warm page cache and after a sync, until the writer returns (the data in the page cache, not yet on disk); sizes are the bytes each wrote.

| format | gridnode | size | tools | size | tools / gridnode |
|---|---|---|---|---|---|
`, machine(), strings.Join(strings.Fields(string(load))[:3], " "), mib(kernelSize), mediaBenchRuns)
	for _, f := range append(kinds, "all") {
		rw := rows[f]
		name := f
		if f == "all" {
			name = "all four together"
		}
		o, x := median(rw.ours), median(rw.tools)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.1f× |\n", name, shortDur(o), mib(rw.oursSize), shortDur(x), mib(rw.toolsSize), float64(x)/float64(o))
	}
	ko, ao := median(kernelOnly), median(all)
	fmt.Fprintf(&b, `
Whole warm build from the spec (`+"`gridnode build --format kernel,uki,iso,usb,pxe`"+`, node program compile and initramfs included): **%.1f s** (target ≤ 15 s); kernel format alone %.1f s, so the four media formats add about %.1f s (the writers above, the boot-loader files read from their Debian packages, the outputs hashed for the manifest), where the tools alone take %.1f s for the same media. Runs: all formats %v; kernel only %v.

The gridnode ISO and USB image are smaller because their ISO 9660 records of the kernel and initramfs point into the UKI inside the EFI FAT image: one copy of each instead of two; and gridnode leaves the empty slot b unwritten (zeros of a new file), where mcopy writes its 64 MiB.`,
		ao.Seconds(), ko.Seconds(), (ao - ko).Seconds(), median(rows["all"].tools).Seconds(), rounded(all), rounded(kernelOnly))
	section(t, "media", b.String())

	if ao > 15*time.Second {
		t.Errorf("all formats took %.1f s, target ≤ 15 s", ao.Seconds())
	}
	if median(rows["all"].ours) >= median(rows["all"].tools) {
		t.Errorf("gridnode's media writers (%v) are not faster than the tools (%v)", median(rows["all"].ours), median(rows["all"].tools))
	}
}

func shortDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// du is the size in bytes of every file under dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	return n
}

func fileBytes(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func toolRun(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func toolCopy(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	toolRun(t, "", "cp", src, dst)
}

// toolsWrite makes formats (uki, iso, usb, pxe) of in into dir with the
// usual tools. As gridnode's writers do, each of uki, iso and usb has its
// own UKI (the command line says which medium booted); kernel, initramfs
// and the EFI image go into the ISO 9660 trees by graft points, uncopied.
func toolsWrite(t *testing.T, in media.Input, dir string, formats ...string) {
	t.Helper()
	work := filepath.Join(dir, ".work")
	os.MkdirAll(work, 0o755)
	defer os.RemoveAll(work)
	has := func(f string) bool {
		for _, x := range formats {
			if x == f {
				return true
			}
		}
		return false
	}
	// The UKI: objcopy adds the sections after the stub's own, page-aligned.
	mkUKI := func(dst, cmdline string) {
		osrel, cmd := filepath.Join(work, "osrel"), filepath.Join(work, "cmdline")
		os.WriteFile(osrel, []byte(uki.OSRelease(in.Version)), 0o644)
		os.WriteFile(cmd, []byte(cmdline), 0o644)
		initrd := fileBytes(t, in.Initrd)
		linuxVMA := (0x40000 + initrd + 0xFFFF) &^ 0xFFFF
		toolRun(t, "", "objcopy",
			"--add-section", ".osrel="+osrel, "--change-section-vma", ".osrel=0x20000",
			"--add-section", ".cmdline="+cmd, "--change-section-vma", ".cmdline=0x30000",
			"--add-section", ".initrd="+in.Initrd, "--change-section-vma", ".initrd=0x40000",
			"--add-section", ".linux="+in.Kernel, "--change-section-vma", fmt.Sprintf(".linux=%#x", linuxVMA),
			in.EFIStub, dst)
	}
	// The EFI FAT image of upgrade/layout: systemd-boot as the
	// removable-media boot file, loader.conf and the slots' entries, the
	// UKI in slot a (padded to the slot size) and, with two slots, an empty
	// slot b, and gridnode.conf, with free room.
	mkFAT := func(dst, ukiPath, medium string, slots int, free int64) {
		slotSize := fileBytes(t, ukiPath)
		if slots == 2 {
			slotSize = layout.SlotSize
		}
		kib := (int64(slots)*slotSize+fileBytes(t, in.SystemdBoot)+int64(len(in.Config))+free)/1024*105/100 + 1024
		toolRun(t, "", "mkfs.vfat", "-C", "-n", media.Label, "-i", "1234ABCD", dst, fmt.Sprint(kib))
		put := func(name string, data []byte) string {
			p := filepath.Join(work, name)
			os.WriteFile(p, data, 0o644)
			return p
		}
		toolRun(t, "", "mmd", "-i", dst, "::EFI", "::EFI/BOOT", "::loader", "::loader/entries", "::gridnode")
		toolRun(t, "", "mcopy", "-i", dst, in.SystemdBoot, "::"+layout.BootLoader)
		toolRun(t, "", "mcopy", "-i", dst, put("loader.conf", layout.LoaderConfText("a")), "::"+layout.LoaderConf)
		for i, s := range layout.Slots[:slots] {
			sl := layout.Slot{Name: s}
			slot := filepath.Join(work, "slot-"+s)
			if i == 0 {
				sl = layout.Slot{Name: s, Version: in.Version, Cmdline: layout.WithBoot(in.Cmdline, medium)}
				toolCopy(t, ukiPath, slot)
			}
			if i > 0 {
				os.WriteFile(slot, nil, 0o644)
			}
			os.Truncate(slot, slotSize)
			entry, _ := layout.EntryText(sl)
			toolRun(t, "", "mcopy", "-i", dst, put("entry-"+s, entry), "::"+layout.EntryFile(s))
			toolRun(t, "", "mcopy", "-i", dst, slot, "::"+layout.SlotFile(s))
		}
		os.WriteFile(filepath.Join(work, media.ConfigName), in.Config, 0o644)
		toolRun(t, "", "mcopy", "-i", dst, filepath.Join(work, media.ConfigName), "::"+media.ConfigName)
	}
	// The ISO 9660 tree for BIOS boot: isolinux (copied: small) and
	// upgrade/layout's isolinux.cfg, and graft points for each slot's
	// kernel and initramfs (copies: xorriso cannot point into a file of the
	// FAT image).
	stage := func(name, medium string, slots int) (string, []string) {
		s := filepath.Join(work, name)
		toolCopy(t, in.Isolinux, filepath.Join(s, "isolinux", "isolinux.bin"))
		toolCopy(t, in.Ldlinux, filepath.Join(s, "isolinux", "ldlinux.c32"))
		cfg := layout.IsolinuxHeader("a")
		grafts := []string{"/boot/linux_a=" + in.Kernel, "/boot/initrd_a=" + in.Initrd}
		for i, sl := range layout.Slots {
			r := layout.Slot{Name: sl}
			if i == 0 {
				r = layout.Slot{Name: sl, Version: in.Version, Cmdline: layout.WithBoot(in.Cmdline, medium)}
			} else if slots == 2 {
				empty := filepath.Join(work, "empty")
				os.WriteFile(empty, nil, 0o644)
				grafts = append(grafts, "/boot/linux_b="+empty, "/boot/initrd_b="+empty)
			}
			region, _ := layout.IsolinuxSlot(r)
			cfg = append(cfg, region...)
		}
		os.WriteFile(filepath.Join(s, "isolinux", "isolinux.cfg"), cfg, 0o644)
		return s, grafts
	}
	mkisofs := func(out, label, stage string, grafts, efi []string, files ...string) {
		args := []string{"-as", "mkisofs", "-quiet", "-o", out, "-V", label, "-R", "-isohybrid-mbr", in.IsoHdpfx,
			"-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table"}
		args = append(args, efi...)
		args = append(append(args, "-graft-points", "/isolinux/="+filepath.Join(stage, "isolinux")), grafts...)
		toolRun(t, "", "xorriso", append(args, files...)...)
	}
	if has("uki") {
		mkUKI(filepath.Join(dir, "gridnode-"+in.Version+".efi"), in.Cmdline)
	}
	if has("iso") {
		u := filepath.Join(work, "iso.efi")
		mkUKI(u, in.Cmdline)
		fat := filepath.Join(work, "efi.img")
		mkFAT(fat, u, "iso", 1, 0)
		s, grafts := stage("iso", "iso", 1)
		mkisofs(filepath.Join(dir, "gridnode-"+in.Version+".iso"), media.Label, s, grafts,
			[]string{"-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot", "-isohybrid-gpt-basdat"},
			"/boot/efi.img="+fat, "/"+media.ConfigName+"="+filepath.Join(work, media.ConfigName))
	}
	if has("usb") {
		u := filepath.Join(work, "usb.efi")
		mkUKI(u, in.Cmdline)
		fat := filepath.Join(work, "esp.img")
		mkFAT(fat, u, "usb", 2, 1<<20)
		s, grafts := stage("usb", "usb", 2)
		mkisofs(filepath.Join(dir, "gridnode-"+in.Version+".img"), "GRIDNODE_USB", s, grafts,
			[]string{"-append_partition", "2", "0xef", fat, "-appended_part_as_gpt"})
	}
	if has("pxe") {
		p := filepath.Join(dir, "pxe")
		toolCopy(t, in.Kernel, filepath.Join(p, "vmlinuz"))
		toolCopy(t, in.Initrd, filepath.Join(p, "initrd"))
		toolCopy(t, in.IPXEEFI, filepath.Join(p, "ipxe.efi"))
		toolCopy(t, in.Undionly, filepath.Join(p, "undionly.kpxe"))
		os.WriteFile(filepath.Join(p, "boot.ipxe"), []byte("#!ipxe\nkernel vmlinuz initrd=initrd "+layout.WithBoot(in.Cmdline, "pxe")+"\ninitrd initrd\nboot\n"), 0o644)
	}
}
