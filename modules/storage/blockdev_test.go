package storage

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"golang.org/x/sys/unix"
)

// TestCacheOnABlockDevice runs the module's real path on a loop device: GPT
// and ext4 through the whole-disk device, BLKRRPART, the partition node
// appearing in devtmpfs, a kernel mount, then the second boot finding the
// cache by label. It needs root and losetup.
func TestCacheOnABlockDevice(t *testing.T) {
	need.Root(t, "a loop device and a mount")
	losetup := need.Tool(t, "losetup")
	img := blank(t, filepath.Join(t.TempDir(), "disk"), 96*mib)
	out, err := exec.Command(losetup, "--find", "--show", "--partscan", img).CombinedOutput()
	if err != nil {
		need.Missing(t, "no loop device here: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command(losetup, "-d", dev).Run() })
	name := filepath.Base(dev)
	mnt := t.TempDir()
	hw := fact.Hardware{Disks: []fact.Disk{{Name: name, Serial: "", Type: fact.SSD, Size: 96 * mib, Capacity: true}}}
	// Where the kernel has no GPT support (CONFIG_EFI_PARTITION, missing on
	// some CI kernels) no partition device appears: stand in for it with a
	// second loop device at the partition's offset, so the kernel still
	// mounts what go-diskfs wrote.
	partDev := func(n *node, disk string) (string, error) {
		p, err := waitPartition(n, disk)
		if err == nil {
			return p, nil
		}
		t.Logf("no partition device (%v): using a loop device at offset 1 MiB", err)
		out, lerr := exec.Command(losetup, "--find", "--show", "--offset", "1048576", "--sizelimit", "98566144", img).CombinedOutput()
		if lerr != nil {
			return "", err
		}
		part := strings.TrimSpace(string(out))
		t.Cleanup(func() { exec.Command(losetup, "-d", part).Run() })
		hw.Disks = append(hw.Disks, fact.Disk{Name: filepath.Base(part), Type: fact.SSD, Size: 94 * mib, Capacity: true})
		return filepath.Base(part), nil
	}
	newNode := func() *node {
		return &node{
			cfg: config.Default(), log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			devDir: "/dev", sysDir: "/sys", mountDir: mnt,
			mount: mountCache, partDev: partDev, mayCreate: true,
		}
	}
	f := newNode().scan(hw)
	if f.Error != "" || f.Cache == nil || !f.Cache.Fresh || f.Cache.Disk != name {
		t.Fatalf("first boot: cache %+v, error %q", f.Cache, f.Error)
	}
	part := f.Cache.Partition
	if err := os.WriteFile(filepath.Join(mnt, "proof"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	run(t, "e2fsck", "-fn", "/dev/"+part)

	f = newNode().scan(hw)
	if f.Error != "" || f.Cache == nil || f.Cache.Fresh || f.Cache.Partition != part {
		t.Fatalf("second boot: cache %+v, error %q; want %s found by label", f.Cache, f.Error, part)
	}
	defer unix.Unmount(mnt, 0)
	if b, err := os.ReadFile(filepath.Join(mnt, "proof")); err != nil || string(b) != "kept" {
		t.Errorf("second boot: proof = %q, %v; want the first boot's file", b, err)
	}
}
