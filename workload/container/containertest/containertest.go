// Package containertest gives tests a container runtime with the real
// helper (compiled once per test binary, as the image builder compiles it)
// and an image layer made of Debian's busybox-static.
package containertest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/gridnode/gridnode/build"
	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/workload/container"
)

var (
	once      sync.Once
	helper    string
	helperErr error
	helperDir string
)

// Helper returns the path of a freshly compiled container helper.
func Helper(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		src := filepath.Join(filepath.Dir(file), "..", "..", "..")
		helperDir, helperErr = os.MkdirTemp("", "gridnode-helper-")
		if helperErr != nil {
			return
		}
		helper = filepath.Join(helperDir, "gridnode-container")
		helperErr = build.CompileHelper(context.Background(), src, helper)
	})
	if helperErr != nil {
		t.Fatal(helperErr)
	}
	return helper
}

// Cleanup removes the compiled helper and the parent cgroups of the tests'
// containers (on cgroup v2 and on every v1 hierarchy); call it from TestMain.
func Cleanup() {
	if helperDir != "" {
		os.RemoveAll(helperDir)
	}
	for _, p := range []string{Cgroup, RunnerCgroup} {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + p)
		for _, d := range append(dirs, "/sys/fs/cgroup"+p) {
			os.Remove(d)
		}
	}
}

// Parent cgroups of the tests' containers.
const (
	Cgroup       = "/gridnode-test-workloads"
	RunnerCgroup = "/gridnode-test-runner"
)

// Applets are the busybox commands the test layer links.
var Applets = []string{"sh", "nc", "ps", "cat", "id", "sleep", "echo", "dd", "awk", "head", "ls",
	"mkdir", "touch", "rm", "wc", "grep", "hostname", "true", "false", "mount", "ip", "stat", "chown",
	"chroot", "unshare"}

// Dir returns a fresh folder that a container's root user (an unprivileged
// id on the node) can reach through: t.TempDir's folders are private.
func Dir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	for p := d; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// Layer returns an image layer folder with /bin/busybox (Debian's
// busybox-static) and its applets, owned by root as an unpacked image is.
func Layer(t testing.TB) string {
	t.Helper()
	need.Root(t, "containers")
	bb := need.Tool(t, "busybox")
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	l := filepath.Join(Dir(t), "layer")
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "root", "data"} {
		if err := os.MkdirAll(filepath.Join(l, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(l, "tmp"), 0o1777)
	if err := os.WriteFile(filepath.Join(l, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range Applets {
		if err := os.Symlink("busybox", filepath.Join(l, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(l, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(l, "etc", "group"), []byte("root:x:0:\nnobody:x:65534:\n"), 0o644)
	return l
}

// Config returns a small container of id running args on layer, with the
// id range of slot n.
func Config(id string, layer string, n uint32, args ...string) container.Config {
	return container.Config{
		ID: id, Hostname: id, Args: args,
		Env:    []string{"PATH=/bin"},
		Layers: []string{layer},
		CPUs:   1, MemoryBytes: 64 << 20, Pids: 64, DiskBytes: 32 << 20,
		IDs:    container.Range{HostID: container.FirstHostID + n*container.RangeSize, Size: container.RangeSize},
		Cgroup: Cgroup,
	}
}
