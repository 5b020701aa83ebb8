package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gridnode/gridnode/workload/image/imagetest"
	"golang.org/x/sys/unix"
)

// TestFullDisk: pulling onto a disk too small is ErrDiskFull, saying so,
// and leaves nothing half-written: no partial download, no blob, no root.
//
// The disk is a real one: a 1 MiB tmpfs, mounted by a copy of this test
// in a user and mount namespace of its own, which needs no root.
func TestFullDisk(t *testing.T) {
	if dir := os.Getenv("IMAGE_FULLDISK_DIR"); dir != "" {
		fullDiskChild(t, dir, os.Getenv("IMAGE_FULLDISK_REF"))
		return
	}
	reg := imagetest.Start(t)
	img, _ := bigImage(t, 4<<20)
	_, pinned := reg.Push(t, "full:1", img)

	cmd := exec.Command(os.Args[0], "-test.run=^TestFullDisk$", "-test.v")
	cmd.Env = append(os.Environ(), "IMAGE_FULLDISK_DIR="+t.TempDir(), "IMAGE_FULLDISK_REF="+pinned)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) { // the child never ran
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: cannot make a user namespace for the full-disk test: %v", err)
		}
		t.Skipf("no unprivileged user namespaces here: %v", err)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestFullDisk") {
		t.Fatalf("full-disk child: %v\n%s", err, out)
	}
}

func fullDiskChild(t *testing.T, dir, ref string) {
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mounting a 1 MiB tmpfs: %v", err)
	}
	s, err := Open(filepath.Join(dir, "images"), Options{Backoff: fast})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Pull(context.Background(), ref, nil, nil)
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "cache disk full") || !strings.Contains(err.Error(), "bytes free") {
		t.Fatalf("Pull of 4 MiB onto 1 MiB = %v; want ErrDiskFull saying what is free", err)
	}
	var left []string
	for _, d := range []string{"partial", "roots"} {
		ents, _ := os.ReadDir(filepath.Join(s.Dir(), d))
		for _, e := range ents {
			left = append(left, d+"/"+e.Name())
		}
	}
	ents, _ := os.ReadDir(filepath.Join(s.Dir(), "blobs", "sha256"))
	for _, e := range ents {
		if fi, _ := e.Info(); fi.Size() > 64<<10 {
			left = append(left, fmt.Sprintf("blobs/sha256/%s (%d bytes)", e.Name(), fi.Size()))
		}
	}
	if len(left) > 0 {
		t.Fatalf("left behind after a full disk: %v", left)
	}
}
