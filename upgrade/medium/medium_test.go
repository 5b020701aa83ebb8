package medium

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridnode/gridnode/build/fat"
	"github.com/gridnode/gridnode/build/iso"
	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/build/mediaconf"
	"github.com/gridnode/gridnode/build/uki"
	"github.com/gridnode/gridnode/build/usb"
	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/layout"
)

// release is a test release: a UKI of Debian's stub with a made-up kernel
// and initramfs (nothing here boots them), and what the medium must show.
type release struct {
	version        string
	in             media.Input
	efi            []byte
	file           doc.File
	kernel, initrd []byte
}

func newRelease(t *testing.T, version string, kernelSize int) *release {
	t.Helper()
	for _, f := range []string{media.DebEFIStub, media.DebSDBoot, media.DebIsolinux, media.DebIsoHdpfx, media.DebLdlinux} {
		need.File(t, f, "the boot-loader packages (make deps)")
	}
	dir := t.TempDir()
	r := &release{version: version, kernel: random(kernelSize), initrd: random(kernelSize/2 + 1000)}
	os.WriteFile(filepath.Join(dir, "vmlinuz"), r.kernel, 0o644)
	os.WriteFile(filepath.Join(dir, "initrd"), r.initrd, 0o644)
	r.in = media.Input{
		Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd"),
		Cmdline: "console=ttyS0 gridnode.farm=1 v=" + version, Version: version,
		Config: []byte("farm=1\n"), Epoch: time.Unix(1700000000, 0).UTC(),
		EFIStub: media.DebEFIStub, SystemdBoot: media.DebSDBoot,
		Isolinux: media.DebIsolinux, IsoHdpfx: media.DebIsoHdpfx, Ldlinux: media.DebLdlinux,
	}
	p := filepath.Join(dir, "gridnode-"+version+".efi")
	if err := uki.Write(r.in, p); err != nil {
		t.Fatal(err)
	}
	r.efi, _ = os.ReadFile(p)
	sum := sha256.Sum256(r.efi)
	r.file = doc.File{Name: filepath.Base(p), SHA256: hex.EncodeToString(sum[:]), Size: int64(len(r.efi))}
	return r
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// mem is a medium in memory.
type mem struct{ b []byte }

func (m *mem) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *mem) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(m.b)) {
		return 0, errors.New("write past the end of the medium")
	}
	return copy(m.b[off:], p), nil
}

func (m *mem) Sync() error { return nil }

func usbImage(t *testing.T, r *release) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "usb.img")
	if err := usb.Write(r.in, p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// booted is what one boot path of a medium boots.
type booted struct{ slot, version string }

// boots parses the medium as each firmware would and checks that what the
// UEFI path (loader.conf → entry → slot UKI) and the BIOS path
// (isolinux.cfg → label → ISO 9660 records) boot is a whole release of rels:
// its UKI, kernel, initramfs and command line, nothing mixed or torn.
func boots(t *testing.T, img []byte, rels ...*release) (uefi, bios booted) {
	t.Helper()
	r := bytes.NewReader(img)
	byVersion := map[string]*release{}
	for _, rel := range rels {
		byVersion[rel.version] = rel
	}
	starts, _ := mediaconf.Partitions(r)
	read := func(p string) []byte {
		f, err := fat.Lookup(r, starts[0], p)
		if err != nil {
			t.Fatalf("UEFI path: %v", err)
		}
		b, _ := readFound(r, f)
		return b
	}
	def, err := layout.ParseLoaderConf(read(layout.LoaderConf))
	if err != nil {
		t.Fatalf("UEFI path: %v", err)
	}
	entry, err := layout.ParseEntry(def, read(layout.EntryFile(def)))
	if err != nil {
		t.Fatalf("UEFI path: %v", err)
	}
	rel := byVersion[entry.Version]
	if rel == nil {
		t.Fatalf("UEFI path: loader.conf boots slot %s, whose entry names version %q, not one of the releases", def, entry.Version)
	}
	slot := read(layout.SlotFile(def))
	if !bytes.Equal(slot[:len(rel.efi)], rel.efi) {
		t.Fatalf("UEFI path: slot %s does not hold release %s's UKI", def, rel.version)
	}
	if want := layout.WithBoot(rel.in.Cmdline, "usb"); entry.Cmdline != want {
		t.Fatalf("UEFI path: entry options %q, want %q", entry.Cmdline, want)
	}
	uefi = booted{def, rel.version}

	cfgRec, err := layout.FindRecord(r, layout.IsolinuxCfg)
	if err != nil {
		t.Fatalf("BIOS path: %v", err)
	}
	def, slots, err := layout.ParseIsolinux(img[cfgRec.LBA*layout.Block : cfgRec.LBA*layout.Block+cfgRec.Size])
	if err != nil {
		t.Fatalf("BIOS path: %v", err)
	}
	sl := slots[def]
	if rel = byVersion[sl.Version]; rel == nil {
		t.Fatalf("BIOS path: isolinux.cfg boots label %s, version %q, not one of the releases", def, sl.Version)
	}
	for _, c := range []struct {
		rec  string
		want []byte
	}{{layout.LinuxRecord(def), rel.kernel}, {layout.InitrdRecord(def), rel.initrd}} {
		x, err := layout.FindRecord(r, c.rec)
		if err != nil {
			t.Fatalf("BIOS path: %v", err)
		}
		if !bytes.Equal(img[x.LBA*layout.Block:x.LBA*layout.Block+x.Size], c.want) {
			t.Fatalf("BIOS path: %s does not hold release %s's bytes", c.rec, rel.version)
		}
	}
	if want := layout.WithBoot(rel.in.Cmdline, "usb"); sl.Cmdline != want {
		t.Fatalf("BIOS path: append %q, want %q", sl.Cmdline, want)
	}
	return uefi, booted{def, rel.version}
}

func TestInstall(t *testing.T) {
	r1, r2, r3 := newRelease(t, "1.0", 300_000), newRelease(t, "2.0", 2_500_000), newRelease(t, "3.0", 400_000)
	dev := &mem{usbImage(t, r1)}
	if u, b := boots(t, dev.b, r1); u.slot != "a" || b.slot != "a" {
		t.Fatalf("a new image boots %v / %v, want slot a", u, b)
	}
	slots, err := Install(dev, bytes.NewReader(r2.efi), r2.file, "2.0")
	if err != nil {
		t.Fatal(err)
	}
	want := []Slot{{Name: "a", Version: "1.0", Size: int64(len(r1.efi))}, {Name: "b", Version: "2.0", Size: int64(len(r2.efi)), UEFI: true, BIOS: true}}
	if fmt.Sprint(slots) != fmt.Sprint(want) {
		t.Fatalf("after installing 2.0: %+v, want %+v", slots, want)
	}
	if u, b := boots(t, dev.b, r1, r2); u != (booted{"b", "2.0"}) || b != (booted{"b", "2.0"}) {
		t.Fatalf("after installing 2.0 the medium boots %v (UEFI) and %v (BIOS)", u, b)
	}
	oracles(t, dev.b, "b", r2)

	// The next release replaces the older one, in slot a; 2.0 stays in b.
	if _, err := Install(dev, bytes.NewReader(r3.efi), r3.file, "3.0"); err != nil {
		t.Fatal(err)
	}
	if u, b := boots(t, dev.b, r2, r3); u != (booted{"a", "3.0"}) || b != (booted{"a", "3.0"}) {
		t.Fatalf("after installing 3.0 the medium boots %v (UEFI) and %v (BIOS)", u, b)
	}
	m, _ := Open(dev)
	if s := m.Slots(); s[1].Version != "2.0" || s[1].UEFI || s[1].BIOS {
		t.Fatalf("the previous release is not kept in slot b: %+v", s)
	}
	oracles(t, dev.b, "a", r3)

	// Back to the previous release.
	if err := SetDefault(dev, "b"); err != nil {
		t.Fatal(err)
	}
	if u, b := boots(t, dev.b, r2, r3); u.version != "2.0" || b.version != "2.0" {
		t.Fatalf("after SetDefault(b): %v / %v", u, b)
	}
}

// oracles check the medium with tools that share no code with it:
// fsck.vfat on the FAT file system, xorriso reading slot s's kernel through
// the ISO 9660 records, sfdisk on the GPT.
func oracles(t *testing.T, img []byte, s string, rel *release) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "img")
	os.WriteFile(p, img, 0o644)
	if out, err := exec.Command(need.Tool(t, "sfdisk"), "--verify", p).CombinedOutput(); err != nil || !bytes.Contains(out, []byte("No errors detected")) {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}
	starts, _ := mediaconf.Partitions(bytes.NewReader(img))
	fatPath := filepath.Join(dir, "fat")
	os.WriteFile(fatPath, img[starts[0]:], 0o644)
	if out, err := exec.Command(need.Tool(t, "fsck.vfat"), "-n", fatPath).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n: %v\n%s", err, out)
	}
	for rec, want := range map[string][]byte{"/" + layout.LinuxRecord(s): rel.kernel, "/" + layout.InitrdRecord(s): rel.initrd} {
		got := filepath.Join(dir, "x")
		if out, err := exec.Command(need.Tool(t, "xorriso"), "-osirrox", "on", "-indev", p, "-extract", rec, got).CombinedOutput(); err != nil {
			t.Fatalf("xorriso -extract %s: %v\n%s", rec, err, out)
		}
		if b, _ := os.ReadFile(got); !bytes.Equal(b, want) {
			t.Errorf("xorriso reads %s as %d bytes, not release %s's %d", rec, len(b), rel.version, len(want))
		}
		os.Remove(got)
	}
}

// errCut is the power cut.
var errCut = errors.New("power cut")

// cut is a medium that loses power during its n-th write: the first half
// of that write's whole sectors land (a sector is written whole or not at
// all), nothing after.
type cut struct {
	mem
	n int
}

func (c *cut) WriteAt(p []byte, off int64) (int, error) {
	switch c.n--; {
	case c.n < 0:
		return 0, errCut
	case c.n == 0:
		k := len(p) / 2 / layout.Sector * layout.Sector
		copy(c.b[off:], p[:k])
		return k, errCut
	}
	return c.mem.WriteAt(p, off)
}

// A power cut at any write leaves a medium whose both boot paths boot
// release 1 or release 2 whole; and a later Install on it succeeds.
func TestPowerCut(t *testing.T) {
	r1, r2 := newRelease(t, "1.0", 300_000), newRelease(t, "2.0", 3_000_000)
	base := usbImage(t, r1)
	sawNew := false
	for n := 1; ; n++ {
		dev := &cut{mem{bytes.Clone(base)}, n}
		_, err := Install(dev, bytes.NewReader(r2.efi), r2.file, "2.0")
		u, b := boots(t, dev.b, r1, r2)
		if err == nil {
			if u.version != "2.0" || b.version != "2.0" {
				t.Fatalf("Install succeeded with %d writes but boots %v / %v", n-1, u, b)
			}
			if n < 5 {
				t.Fatalf("Install made only %d writes: the test cut nothing", n-1)
			}
			break
		}
		if !errors.Is(err, errCut) {
			t.Fatalf("cut at write %d: %v", n, err)
		}
		sawNew = sawNew || u.version == "2.0" || b.version == "2.0"
		t.Logf("cut at write %d: UEFI boots %s, BIOS boots %s", n, u.version, b.version)
		// The node tries again at its next chance.
		again := &mem{dev.b}
		if _, err := Install(again, bytes.NewReader(r2.efi), r2.file, "2.0"); err != nil {
			t.Fatalf("Install after a cut at write %d: %v", n, err)
		}
		if u, b := boots(t, again.b, r1, r2); u.version != "2.0" || b.version != "2.0" {
			t.Fatalf("Install after a cut at write %d boots %v / %v", n, u, b)
		}
	}
	if !sawNew {
		t.Fatal("no cut fell between the two switches (BIOS switched, UEFI not): the order is not what the test expects")
	}
}

func TestRefusals(t *testing.T) {
	r1, r2 := newRelease(t, "1.0", 300_000), newRelease(t, "2.0", 300_000)
	dev := &mem{usbImage(t, r1)}

	big := r2.file
	big.Size = layout.SlotSize + 1
	if _, err := Install(dev, bytes.NewReader(r2.efi), big, "2.0"); !errors.Is(err, ErrTooBig) {
		t.Errorf("a release larger than a slot: %v", err)
	}
	bad := r2.file
	bad.SHA256 = strings.Repeat("0", 64)
	if _, err := Install(dev, bytes.NewReader(r2.efi), bad, "2.0"); err == nil || !strings.Contains(err.Error(), "signed release says") {
		t.Errorf("a UKI that is not the signed one: %v", err)
	}
	if _, err := Install(dev, bytes.NewReader(r2.efi), r2.file, "9.9"); err == nil || !strings.Contains(err.Error(), "says version") {
		t.Errorf("a UKI of another version: %v", err)
	}
	if u, _ := boots(t, dev.b, r1, r2); u.version != "1.0" {
		t.Fatalf("a refused release changed the default: %v", u)
	}
	ro := &readOnly{mem{bytes.Clone(dev.b)}}
	if _, err := Install(ro, bytes.NewReader(r2.efi), r2.file, "2.0"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("a read-only medium: %v", err)
	}

	// The hybrid ISO has one slot.
	p := filepath.Join(t.TempDir(), "x.iso")
	if err := iso.Write(r1.in, p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if _, err := Install(&mem{b}, bytes.NewReader(r2.efi), r2.file, "2.0"); !errors.Is(err, ErrOneSlot) {
		t.Errorf("an ISO: %v", err)
	}
	// A medium of the old layout: the UKI as BOOTX64.EFI, no slots.
	fs, err := fat.New([]fat.File{{Path: layout.BootLoader, Data: r1.efi}, {Path: media.ConfigName, Data: []byte("farm=1\n")}}, fat.Options{Label: media.Label})
	if err != nil {
		t.Fatal(err)
	}
	old := &mem{make([]byte, fs.Size())}
	fs.WriteTo(old, 0)
	if _, err := Install(old, bytes.NewReader(r2.efi), r2.file, "2.0"); !errors.Is(err, ErrNoSlots) || !strings.Contains(err.Error(), "kexec") {
		t.Errorf("an old medium: %v", err)
	}
}

type readOnly struct{ mem }

func (readOnly) WriteAt([]byte, int64) (int, error) { return 0, syscall.EROFS }
