package storage

import (
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
)

const mib = 1 << 20

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(need.Tool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// blank makes a sparse, all-zero image file.
func blank(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}

func withExt4(t *testing.T, path string, size int64) string {
	blank(t, path, size)
	run(t, "mkfs.ext4", "-q", "-F", "-L", "farmer-data", path)
	return path
}

func inspectFile(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	what, err := Inspect(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return what
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func TestInspectEmptyAndUsed(t *testing.T) {
	dir := t.TempDir()
	if what := inspectFile(t, blank(t, filepath.Join(dir, "blank"), 64*mib)); what != "" {
		t.Errorf("blank disk: %q, want empty", what)
	}
	if what := inspectFile(t, withExt4(t, filepath.Join(dir, "ext4"), 64*mib)); what != "an ext4 file system" {
		t.Errorf("ext4 disk: %q", what)
	}
	gptImg := blank(t, filepath.Join(dir, "gpt"), 128*mib)
	if _, _, err := Format(gptImg); err != nil {
		t.Fatal(err)
	}
	if what := inspectFile(t, gptImg); what != "a GPT partition table" {
		t.Errorf("GPT disk: %q", what)
	}
	fat := blank(t, filepath.Join(dir, "fat"), 64*mib)
	run(t, "mkfs.vfat", fat)
	if what := inspectFile(t, fat); what != "a FAT file system" {
		t.Errorf("FAT disk: %q", what)
	}
	mbr := blank(t, filepath.Join(dir, "mbr"), 64*mib)
	b := make([]byte, 512)
	b[446+4] = 0x83 // a Linux partition
	b[510], b[511] = 0x55, 0xAA
	writeAt(t, mbr, b, 0)
	if what := inspectFile(t, mbr); what != "an MBR partition table" {
		t.Errorf("MBR disk: %q", what)
	}
	junk := blank(t, filepath.Join(dir, "junk"), 64*mib)
	writeAt(t, junk, []byte("something"), 300000)
	if what := inspectFile(t, junk); !strings.Contains(what, "non-zero") {
		t.Errorf("disk with unknown data: %q, want it counted as data", what)
	}
	backup := blank(t, filepath.Join(dir, "backup"), 64*mib)
	writeAt(t, backup, []byte("EFI PART"), 64*mib-512)
	if what := inspectFile(t, backup); !strings.Contains(what, "backup GPT") {
		t.Errorf("disk with only a backup GPT: %q", what)
	}
}

func writeAt(t *testing.T, path string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestFormatMakesACheckedLabelledExt4(t *testing.T) {
	img := blank(t, filepath.Join(t.TempDir(), "disk"), 512*mib)
	off, size, err := Format(img)
	if err != nil {
		t.Fatal(err)
	}
	if off != mib || size <= 0 || off+size > 512*mib-mib {
		t.Fatalf("partition at %d, %d bytes: want 1 MiB aligned inside the disk", off, size)
	}
	dev := img + "?offset=" + strconv.FormatInt(off, 10)
	run(t, "e2fsck", "-fn", dev) // fails the test on any finding
	if out := run(t, "dumpe2fs", "-h", dev); !strings.Contains(out, "Filesystem volume name:   "+Label) {
		t.Errorf("dumpe2fs does not show label %s:\n%s", Label, out)
	}
	f, _ := os.Open(img)
	defer f.Close()
	if l, ok := Ext4Label(io.NewSectionReader(f, off, size)); !ok || l != Label {
		t.Errorf("Ext4Label = %q, %v; want %s", l, ok, Label)
	}
	if l, ok := Ext4Label(f); ok {
		t.Errorf("Ext4Label on the whole disk = %q: the disk starts with a GPT, not a file system", l)
	}
}

// bench is a set of disk images standing for /dev and the hardware fact
// that lists them.
type bench struct {
	t       *testing.T
	dev     string
	sys     string
	hw      fact.Hardware
	mounted []string
}

func newBench(t *testing.T) *bench {
	return &bench{t: t, dev: t.TempDir(), sys: t.TempDir()}
}

func (b *bench) disk(name, serial, typ string, path string) {
	st, err := os.Stat(path)
	if err != nil {
		b.t.Fatal(err)
	}
	b.hw.Disks = append(b.hw.Disks, fact.Disk{Name: name, Serial: serial, Type: typ, Size: uint64(st.Size()), Capacity: true})
}

func (b *bench) node(cfg config.Node) *node {
	return &node{
		cfg:       cfg,
		log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		devDir:    b.dev,
		sysDir:    b.sys,
		mountDir:  MountPoint,
		mayCreate: true,
		mount: func(dev, dir string) error {
			b.mounted = append(b.mounted, dev)
			return nil
		},
		// An image file has no partition devices: stand in for the kernel by
		// publishing partition 1 as DISK1, a copy of its first MiB (enough
		// for the label).
		partDev: func(n *node, disk string) (string, error) {
			src, err := os.Open(filepath.Join(b.dev, disk))
			if err != nil {
				return "", err
			}
			defer src.Close()
			buf := make([]byte, mib)
			if _, err := src.ReadAt(buf, mib); err != nil {
				return "", err
			}
			part := disk + "1"
			if err := os.WriteFile(filepath.Join(b.dev, part), buf, 0o644); err != nil {
				return "", err
			}
			if err := os.MkdirAll(filepath.Join(b.sys, "block", disk, part), 0o755); err != nil {
				return "", err
			}
			return part, os.WriteFile(filepath.Join(b.sys, "block", disk, part, "partition"), []byte("1\n"), 0o644)
		},
	}
}

func state(f fact.Storage, name string) fact.DiskState {
	for _, d := range f.Disks {
		if d.Name == name {
			return d
		}
	}
	return fact.DiskState{}
}

func TestDiskWithFilesystemKeepsEveryByte(t *testing.T) {
	b := newBench(t)
	img := withExt4(t, filepath.Join(b.dev, "vda"), 32*mib)
	b.disk("vda", "FARMER1", fact.SSD, img)
	before := sum(t, img)
	f := b.node(config.Default()).scan(b.hw)
	if after := sum(t, img); after != before {
		t.Fatal("the disk holding a file system changed")
	}
	if f.Cache != nil || len(b.mounted) != 0 {
		t.Errorf("cache = %+v, mounted %v; want no cache", f.Cache, b.mounted)
	}
	st := state(f, "vda")
	if st.Used || !strings.Contains(st.Reason, "ext4") || !strings.Contains(st.Reason, "gridnode.wipe=FARMER1") {
		t.Errorf("vda state = %+v, want unused, saying it holds ext4 and how to wipe it", st)
	}
	want := "no empty disk for the cache: vda has an ext4 file system (serial FARMER1), use gridnode.wipe=FARMER1 to allow wiping it"
	if msg := noCacheMessage(f); msg != want {
		t.Errorf("message:\n got %q\nwant %q", msg, want)
	}
}

func TestFirstBootTakesEmptySSDThenFindsItByLabel(t *testing.T) {
	b := newBench(t)
	used := withExt4(t, filepath.Join(b.dev, "sda"), 32*mib)
	b.disk("sda", "USED", fact.SSD, used)
	b.disk("sdb", "HDD", fact.HDD, blank(t, filepath.Join(b.dev, "sdb"), 96*mib))
	b.disk("sdc", "SSD", fact.SSD, blank(t, filepath.Join(b.dev, "sdc"), 96*mib))
	b.hw.Disks = append(b.hw.Disks, fact.Disk{Name: "sr0", Reason: "optical drive"})
	usedSum, hddSum := sum(t, used), sum(t, filepath.Join(b.dev, "sdb"))

	f := b.node(config.Default()).scan(b.hw)
	if f.Error != "" {
		t.Fatal(f.Error)
	}
	want := fact.Cache{Disk: "sdc", Partition: "sdc1", Mount: MountPoint, Label: Label, Fresh: true}
	if f.Cache == nil || *f.Cache != want {
		t.Fatalf("cache = %+v, want %+v", f.Cache, want)
	}
	if len(b.mounted) != 1 || b.mounted[0] != filepath.Join(b.dev, "sdc1") {
		t.Errorf("mounted %v, want sdc1", b.mounted)
	}
	if sum(t, used) != usedSum || sum(t, filepath.Join(b.dev, "sdb")) != hddSum {
		t.Error("a disk other than the chosen SSD changed")
	}
	run(t, "e2fsck", "-fn", filepath.Join(b.dev, "sdc")+"?offset="+strconv.Itoa(mib))
	if st := state(f, "sdc"); !st.Used {
		t.Errorf("sdc state = %+v, want used", st)
	}
	if st := state(f, "sr0"); st.Used || !strings.Contains(st.Reason, "optical") {
		t.Errorf("sr0 state = %+v", st)
	}

	// Next boot: the same disks; the cache is found, not made again.
	b.mounted = nil
	cacheSum := sum(t, filepath.Join(b.dev, "sdc"))
	f = b.node(config.Default()).scan(b.hw)
	want.Fresh = false
	if f.Cache == nil || *f.Cache != want {
		t.Fatalf("second boot: cache = %+v, want %+v", f.Cache, want)
	}
	if sum(t, filepath.Join(b.dev, "sdc")) != cacheSum {
		t.Error("second boot rewrote the cache disk")
	}
	if st := state(f, "sdb"); st.Used || !strings.Contains(st.Reason, "not needed") {
		t.Errorf("sdb state = %+v", st)
	}
	if st := state(f, "sda"); st.Used || !strings.Contains(st.Reason, "holds an ext4 file system; not touched") {
		t.Errorf("sda state = %+v, want unused, saying it holds ext4", st)
	}
}

func TestEmptyHDDBeforeWipableSSD(t *testing.T) {
	b := newBench(t)
	b.disk("sda", "OLD", fact.SSD, withExt4(t, filepath.Join(b.dev, "sda"), 32*mib))
	b.disk("sdb", "HDD", fact.HDD, blank(t, filepath.Join(b.dev, "sdb"), 96*mib))
	cfg := config.Default()
	cfg.Wipe = []string{"OLD"}
	f := b.node(cfg).scan(b.hw)
	if f.Cache == nil || f.Cache.Disk != "sdb" {
		t.Fatalf("cache = %+v, want the empty HDD before wiping the SSD", f.Cache)
	}
}

func TestWipeAllowedBySerial(t *testing.T) {
	b := newBench(t)
	b.disk("sda", "OLD", fact.SSD, withExt4(t, filepath.Join(b.dev, "sda"), 96*mib))
	b.disk("sdb", "KEEP", fact.SSD, withExt4(t, filepath.Join(b.dev, "sdb"), 32*mib))
	keep := sum(t, filepath.Join(b.dev, "sdb"))
	cfg := config.Default()
	if err := config.Set(&cfg, "wipe", "OLD"); err != nil {
		t.Fatal(err)
	}
	f := b.node(cfg).scan(b.hw)
	if f.Cache == nil || f.Cache.Disk != "sda" || !f.Cache.Fresh {
		t.Fatalf("cache = %+v (error %q), want sda wiped as gridnode.wipe=OLD allows", f.Cache, f.Error)
	}
	if sum(t, filepath.Join(b.dev, "sdb")) != keep {
		t.Error("sdb changed although the wipe list does not name it")
	}
}

func TestNoDiskStillPublishes(t *testing.T) {
	b := newBench(t)
	f := b.node(config.Default()).scan(b.hw)
	if f.Cache != nil || f.Disks == nil {
		t.Errorf("facts = %+v, want no cache and an empty disk list", f)
	}
	if msg := noCacheMessage(f); !strings.Contains(msg, "no usable disk") {
		t.Errorf("message %q", msg)
	}
}

// The quiet of the first disk list counts from the last driver load, and
// never from the future or from nothing.
func TestQuietSince(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, c := range []struct {
		uptime    time.Duration
		driversAt float64
		want      time.Time
	}{
		{10 * time.Second, 8.5, now.Add(-1500 * time.Millisecond)},
		{10 * time.Second, 0, now},  // no coldplug fact time
		{10 * time.Second, 12, now}, // a time after now: not believed
		{0, 3, now},                 // no boot time
	} {
		if got := quietSince(now, c.uptime, c.driversAt); !got.Equal(c.want) {
			t.Errorf("quietSince(now, %s, %v) = now%+v, want now%+v", c.uptime, c.driversAt, got.Sub(now), c.want.Sub(now))
		}
	}
}
