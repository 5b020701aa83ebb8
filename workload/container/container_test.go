package container_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/workload/container"
	"github.com/gridnode/gridnode/workload/container/containertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	containertest.Cleanup()
	os.Exit(code)
}

// run starts c, waits for its end and returns its exit and output.
func run(t *testing.T, r *container.Runtime, c container.Config) (container.Exit, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.Create(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Delete(c.ID) })
	if _, err := r.Start(ctx, c.ID, nil); err != nil {
		t.Fatal(err)
	}
	ex, err := r.Wait(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(filepath.Join(r.Bundle(c.ID), container.LogFile))
	return ex, string(out)
}

func newRuntime(t *testing.T) (*container.Runtime, string) {
	layer := containertest.Layer(t)
	return container.New(containertest.Helper(t), filepath.Join(containertest.Dir(t), "containers")), layer
}

// The container sees only its own processes, its root is root inside and
// an unprivileged uid on the node, and it cannot leave its limits.
func TestContainerIsolation(t *testing.T) {
	r, layer := newRuntime(t)
	c := containertest.Config("iso", layer, 3, "sh", "-c",
		`sleep 1000 & echo "pid1 $(cat /proc/1/comm)"; echo "maxpid $(ls /proc | grep '^[0-9]' | sort -n | tail -n 1)"; `+
			`echo "uid $(id -u)"; echo uidmap $(cat /proc/self/uid_map); `+
			`echo hi > /sys/kernel/x 2>/dev/null || echo "sys read-only"; echo "keys $(stat -c %F /proc/keys)"; `+
			`touch /etc/mine && echo "root owns its image"; hostname; grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.Create(c); err != nil {
		t.Fatal(err)
	}
	defer r.Delete(c.ID)
	pid, err := r.Start(ctx, c.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	// On the node, the container's root is the first id of its range.
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		want := fmt.Sprintf("Uid:\t%d\t%d", c.IDs.HostID, c.IDs.HostID)
		if !strings.Contains(string(st), want) {
			t.Errorf("the container's init on the node: want %q in\n%s", want, st)
		}
	} else {
		t.Logf("init %d already ended: %v", pid, err)
	}
	ex, err := r.Wait(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(filepath.Join(r.Bundle(c.ID), container.LogFile))
	t.Logf("exit %+v, output:\n%s", ex, out)
	for _, want := range []string{
		"pid1 sh", // its own pid namespace
		"uid 0",   // root inside
		fmt.Sprintf("uidmap 0 %d %d", c.IDs.HostID, c.IDs.Size), // 0 → the range
		"sys read-only",
		"keys character special file", // masked with /dev/null
		"root owns its image",         // id-mapped layers: root may write /etc (copy-up)
		"iso",                         // its own host name
		"NoNewPrivs:\t1",
		"Seccomp:\t2", // a filter: the default profile
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	var maxpid int
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "maxpid ") {
			fmt.Sscan(strings.TrimPrefix(l, "maxpid "), &maxpid)
		}
	}
	if maxpid == 0 || maxpid > 50 { // the node's pids run into the hundreds
		t.Errorf("the container sees pid %d: not only its own processes", maxpid)
	}
	if ex.Code != 0 {
		t.Errorf("exit %+v", ex)
	}
}

// Over its memory limit the container is killed by the kernel in its own
// cgroup; this process (the node's side) goes on.
func TestMemoryLimitKillsTheContainer(t *testing.T) {
	r, layer := newRuntime(t)
	c := containertest.Config("oom", layer, 4, "awk", `BEGIN { s = "xxxxxxxxxxxxxxxx"; while (1) s = s s }`)
	c.MemoryBytes = 32 << 20
	ex, out := run(t, r, c)
	if !ex.OOMKilled || ex.Signal != "SIGKILL" {
		t.Fatalf("exit %+v (output %q): want killed by the OOM killer", ex, out)
	}
}

// The pids limit stops a fork bomb at the limit: with 6, the shell and 5
// children.
func TestPidsLimit(t *testing.T) {
	r, layer := newRuntime(t)
	c := containertest.Config("pids", layer, 5, "sh", "-c",
		`for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 1000 & echo started; done`)
	c.Pids = 6
	_, out := run(t, r, c)
	if !strings.Contains(out, "can't fork") {
		t.Errorf("no fork was refused; output:\n%s", out)
	}
	if n := strings.Count(out, "started"); n == 0 || n > 5 {
		t.Errorf("%d children started with a limit of 6 processes; output:\n%s", n, out)
	}
}

// The writable layer is full at its size, not at the cache disk's.
func TestWritableLayerIsCapped(t *testing.T) {
	r, layer := newRuntime(t)
	c := containertest.Config("disk", layer, 6, "sh", "-c", `dd if=/dev/zero of=/big bs=1M count=64 2>&1; ls -l /big`)
	c.DiskBytes = 24 << 20
	_, out := run(t, r, c)
	if !strings.Contains(out, "No space left on device") {
		t.Errorf("64 MiB fit in a 24 MiB writable layer; output:\n%s", out)
	}
}

// Delete leaves nothing of the container on the node: no process, cgroup,
// mount, loop device or file.
func TestDeleteLeavesNothing(t *testing.T) {
	r, layer := newRuntime(t)
	c := containertest.Config("gone", layer, 7, "sleep", "1000")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.Create(c); err != nil {
		t.Fatal(err)
	}
	pid, err := r.Start(ctx, c.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle := r.Bundle(c.ID)
	if !strings.Contains(mountinfo(t), bundle) {
		t.Fatal("the running container has no mount under its bundle")
	}
	if err := r.Delete(c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("the container's init %d still runs", pid)
	}
	if _, err := os.Stat(bundle); !os.IsNotExist(err) {
		t.Errorf("bundle %s is still there (%v)", bundle, err)
	}
	if m := mountinfo(t); strings.Contains(m, bundle) {
		t.Errorf("mounts left under %s:\n%s", bundle, m)
	}
	for _, cg := range cgroupDirs(c) {
		if _, err := os.Stat(cg); !os.IsNotExist(err) {
			t.Errorf("cgroup %s is still there", cg)
		}
	}
	loops, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, l := range loops {
		if b, _ := os.ReadFile(l); strings.Contains(string(b), bundle) {
			t.Errorf("loop device %s still backs %s", l, b)
		}
	}
}

func mountinfo(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// cgroupDirs are where the container's cgroup would be, on cgroup v2 and
// on the v1 hierarchies.
func cgroupDirs(c container.Config) []string {
	p := filepath.Join(c.Cgroup, c.ID)
	return []string{
		filepath.Join("/sys/fs/cgroup", p),
		filepath.Join("/sys/fs/cgroup/memory", p),
		filepath.Join("/sys/fs/cgroup/pids", p),
		filepath.Join("/sys/fs/cgroup/cpu", p),
	}
}

// A container that cannot start (its command is not in the image) makes
// Start return the helper's reason, also when the output goes to the
// caller (the workloads module's case), instead of waiting for ever.
func TestStartFailureIsReported(t *testing.T) {
	r, layer := newRuntime(t)
	c := containertest.Config("nostart", layer, 6, "/bin/no-such-program")
	if err := r.Create(c); err != nil {
		t.Fatal(err)
	}
	defer r.Delete(c.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	_, err := r.Start(ctx, c.ID, &out)
	if ctx.Err() != nil {
		t.Fatal("Start did not return before its deadline")
	}
	if err == nil || !strings.Contains(err.Error(), "no-such-program") {
		t.Errorf("Start: %v, want the helper's reason naming the command", err)
	}
}
