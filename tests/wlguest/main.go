// Command wlguest checks the workload runtime on the node's own kernel: the
// QEMU test boots the node's kernel and initramfs with rdinit=/wlguest (this
// program appended to the initramfs) and a disk holding a busybox layer.
// It mounts what PID 1 would, loads drivers with /init modprobe, runs
// containers through package runner exactly as the workloads module will
// (cgroup v2, the workload kernel modules, id-mapped ext4 layers, the helper
// /bin/gridnode-container), prints "wlguest: ok NAME" or "wlguest: FAIL
// NAME: why" per check, then "wlguest: done", and powers off.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gridnode/gridnode/workload/container"
	"github.com/gridnode/gridnode/workload/runner"
	"github.com/gridnode/gridnode/workload/runtime"
)

func main() {
	if err := run(); err != nil {
		fmt.Printf("wlguest: FAIL setup: %v\n", err)
	}
	fmt.Println("wlguest: done")
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func check(name string, ok bool, format string, a ...any) {
	if ok {
		fmt.Printf("wlguest: ok %s\n", name)
		return
	}
	fmt.Printf("wlguest: FAIL %s: %s\n", name, fmt.Sprintf(format, a...))
}

func mounts() error {
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2"}, {"tmpfs", "/tmp", "tmpfs"}, {"tmpfs", "/run", "tmpfs"},
	} {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	// The kernel asks for modules (ext4's crc32c) through this helper, as
	// PID 1 arranges.
	if err := os.WriteFile("/proc/sys/kernel/modprobe", []byte("/init"), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("/init", "modprobe", "virtio_pci", "virtio_blk", "ext4").CombinedOutput(); err != nil {
		return fmt.Errorf("/init modprobe: %v: %s", err, out)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat("/dev/vda"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no /dev/vda after a minute")
		}
		time.Sleep(50 * time.Millisecond) // devtmpfs makes the node; no uevent reader here
	}
	os.MkdirAll("/var/cache", 0o755)
	if err := unix.Mount("/dev/vda", "/var/cache", "ext4", 0, ""); err != nil {
		return fmt.Errorf("mounting the cache disk: %w", err)
	}
	return nil
}

func read(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

func run() error {
	if err := mounts(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := runner.New(runner.Options{Dir: "/var/cache/runtime"})
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	if err := r.Setup(ctx, runtime.Limits{MilliCPU: 1500, Memory: 256 << 20, PIDs: 500}); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	for f, want := range map[string]string{"memory.max": "268435456", "memory.swap.max": "0", "cpu.max": "150000 100000", "pids.max": "500"} {
		got := read("/sys/fs/cgroup/workloads/" + f)
		check("workloads cgroup "+f, got == want, "%q, want %q", got, want)
	}
	if _, err := r.AttachNetwork(ctx, runtime.Network{Deployment: "t1-web", Owner: 1}); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	ids := runtime.IDRange{Base: container.FirstHostID, Size: container.RangeSize}
	// A volume as the workloads module makes it: its folders private to
	// the node's root (0700), given to the deployment by the runtime.
	vol := "/var/cache/workloads/volumes/t1-web/data"
	if err := os.MkdirAll(vol, 0o700); err != nil {
		return err
	}
	spec := func(id string, mem uint64, args ...string) (runtime.Spec, *bytes.Buffer) {
		// Wait returns once the output is all copied: no lock needed.
		out := &bytes.Buffer{}
		return runtime.Spec{
			ID: id, Deployment: "t1-web", Owner: 1, Workload: "web", Generation: 1,
			RootFS: []string{"/var/cache/layer"}, Args: args, Env: []string{"PATH=/bin"}, Hostname: "web",
			IDs: ids, Limits: runtime.Limits{MilliCPU: 500, Memory: mem, PIDs: 32, Disk: 32 << 20, IOWeight: 100}, Output: out,
			Volumes: []runtime.Volume{{Name: "data", Source: vol, Target: "/data"}},
		}, out
	}
	s, out := spec("t1-web.web.g1", 64<<20, "sh", "-c",
		`echo "uid $(id -u)"; echo uidmap $(cat /proc/self/uid_map); echo "pid1 $(cat /proc/1/comm)"; `+
			`cd /sys/fs/cgroup; echo "memory.max $(cat memory.max)"; echo "memory.swap.max $(cat memory.swap.max)"; `+
			`echo "pids.max $(cat pids.max)"; echo "cpu.max $(cat cpu.max)"; echo "io.weight $(cat io.weight)"; `+
			`echo kept > /data/file && echo "volume written"; touch /etc/x && echo "root writes its image"; `+
			`echo hi > /sys/x 2>/dev/null || echo "sys read-only"; `+
			// The node runs from its initramfs: the container is held by a
			// chroot (no pivot_root there), so it must not chroot, nor make
			// a user namespace in which it could.
			`chroot / true 2>/dev/null || echo "no chroot"; unshare -U -r true 2>/dev/null || echo "no user namespace"; `+
			`grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status`)
	ex, err := runOnce(ctx, r, s)
	if err != nil {
		return err
	}
	got := out.String()
	fmt.Print(prefix(got))
	for _, want := range []string{"uid 0", fmt.Sprintf("uidmap 0 %d %d", ids.Base, ids.Size), "pid1 sh", "memory.max 67108864",
		"memory.swap.max 0", "pids.max 32", "cpu.max 50000 100000", "io.weight default 100", "volume written", "root writes its image", "sys read-only", "no chroot", "no user namespace", "NoNewPrivs:\t1", "Seccomp:\t2"} {
		check(want, strings.Contains(got, want), "not in the container's output")
	}
	check("exit 0", ex.Code == 0, "%+v", ex)
	check("volume file on the node", read(vol+"/file") == "kept", "%q", read(vol+"/file"))

	s, out = spec("t1-web.oom.g1", 32<<20, "awk", `BEGIN { s = "xxxxxxxxxxxxxxxx"; while (1) s = s s }`)
	ex, err = runOnce(ctx, r, s)
	if err != nil {
		return err
	}
	check("oom kill", ex.OOMKilled && ex.Signal == unix.SIGKILL, "%+v (output %q)", ex, out.String())

	if err := r.DetachNetwork(ctx, "t1-web"); err != nil {
		return err
	}
	left, _ := filepath.Glob("/sys/fs/cgroup/workloads/*/")
	check("no cgroup left", len(left) == 0, "%v", left)
	mi := read("/proc/self/mountinfo")
	check("no mount left", !strings.Contains(mi, "/var/cache/runtime/"), "%s", mi)
	inv, _ := r.List(ctx)
	check("nothing listed", len(inv.Instances)+len(inv.Networks) == 0, "%+v", inv)
	return nil
}

// runOnce runs an instance to its end and deletes it.
func runOnce(ctx context.Context, r *runner.Runtime, s runtime.Spec) (runtime.Exit, error) {
	if _, err := r.Create(ctx, s); err != nil {
		return runtime.Exit{}, fmt.Errorf("create: %w", err)
	}
	defer r.Delete(ctx, s.ID)
	if err := r.Start(ctx, s.ID); err != nil {
		return runtime.Exit{}, fmt.Errorf("start: %w", err)
	}
	return r.Wait(ctx, s.ID)
}

func prefix(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("wlguest: container: " + l + "\n")
	}
	return b.String()
}
