package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/u-root/mkuimage/cpio"

	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/qemu"
	"github.com/gridnode/gridnode/workload/container/containertest"
)

// The workload runtime on the node's own kernel and initramfs (Debian's
// kernel, cgroup v2, the workloads driver group loaded by /init modprobe,
// the helper the builder compiled): tests/wlguest runs containers through
// package runner inside the guest and reports each check on the console.
func TestWorkloadRuntimeOnNode(t *testing.T) {
	need.Root(t, "an ext4 disk image made with mkfs.ext4 -d from a root-owned layer")
	mkfs := need.Tool(t, "mkfs.ext4")
	r := image(t, "node")

	// The guest program, appended to the node's initramfs as a second
	// (uncompressed) archive: the kernel unpacks both.
	bin := filepath.Join(t.TempDir(), "wlguest")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./tests/wlguest")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building wlguest: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := os.ReadFile(r.Initramfs)
	if err != nil {
		t.Fatal(err)
	}
	var extra bytes.Buffer
	w := cpio.Newc.Writer(&extra)
	if err := cpio.WriteRecordsAndDirs(w, []cpio.Record{cpio.StaticFile("wlguest", string(data), 0o755)}); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	// The kernel reads an archive after a compressed one only at a 4-byte
	// aligned offset; zeros between archives are skipped.
	for len(initrd)%4 != 0 {
		initrd = append(initrd, 0)
	}
	initrdPath := filepath.Join(t.TempDir(), "initrd")
	if err := os.WriteFile(initrdPath, append(initrd, extra.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}

	// The cache disk: ext4 with the image layer at /layer, owned by root
	// as the image store unpacks it.
	layer := containertest.Layer(t)
	disk := filepath.Join(t.TempDir(), "cache.img")
	if out, err := exec.Command(mkfs, "-q", "-F", "-E", "root_owner=0:0", "-d", filepath.Dir(layer), disk, "256M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}

	vm := boot(t, qemu.Options{
		Boot:      qemu.KernelBoot(r.Kernel, initrdPath, "console=ttyS0,115200 rdinit=/wlguest panic=-1 no_timer_check"),
		Disks:     []qemu.Disk{{Path: disk}},
		NoNetwork: true,
	})
	_, err = vm.Expect(context.Background(), regexp.MustCompile(`(?m)^wlguest: done`), 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	console := vm.Console()
	var oks int
	for _, l := range strings.Split(console, "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case strings.HasPrefix(l, "wlguest: FAIL"):
			t.Error(l)
		case strings.HasPrefix(l, "wlguest: ok"):
			oks++
		}
	}
	if oks < 22 {
		t.Errorf("%d checks passed in the guest, want 22:\n%s", oks, console)
	}
}
