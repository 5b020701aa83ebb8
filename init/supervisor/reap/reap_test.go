package reap

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// start starts argv through Start.
func start(t *testing.T, argv ...string) *Child {
	t.Helper()
	path, err := exec.LookPath(argv[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := StartProcess(path, argv, &os.ProcAttr{Files: []*os.File{nil, nil, os.Stderr}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitDone(t *testing.T, c *Child) unix.WaitStatus {
	t.Helper()
	select {
	case <-c.Done():
		return c.Status()
	case <-time.After(20 * time.Second):
		t.Fatalf("pid %d not reaped in 20 s", c.PID())
	}
	return 0
}

// TestStartAndExit: the owner learns how its child ended, even a child
// that ended before Start returned.
func TestStartAndExit(t *testing.T) {
	if ws := waitDone(t, start(t, "sh", "-c", "exit 7")); !ws.Exited() || ws.ExitStatus() != 7 {
		t.Errorf("sh -c 'exit 7': wait status %#x", uint32(ws))
	}
	if ws := waitDone(t, start(t, "true")); !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("true: wait status %#x", uint32(ws))
	}
	c := start(t, "sleep", "60")
	if err := c.Signal(syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if ws := waitDone(t, c); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("sleep killed: wait status %#x", uint32(ws))
	}
}

// TestSignalAfterReapIsNothing: once reaped, a child's pid may be another
// process's; Signal must not reach it.
func TestSignalAfterReapIsNothing(t *testing.T) {
	c := start(t, "true")
	waitDone(t, c)
	if err := c.Signal(syscall.SIGKILL, true); err != nil {
		t.Errorf("Signal after the child was reaped: %v, want nothing done", err)
	}
}

// TestReapsOrphans: a grandchild left behind by its parent comes back to
// us (as to PID 1: the test process is a subreaper) and is reaped, though
// nobody registered it.
func TestReapsOrphans(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	path, _ := exec.LookPath("sh")
	// The parent starts a short sleep in the background, says its pid,
	// and exits: the sleep is orphaned.
	parent, err := StartProcess(path, []string{"sh", "-c", "sleep 0.2 & echo $!"}, &os.ProcAttr{Files: []*os.File{nil, w, os.Stderr}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := r.Read(buf)
	r.Close()
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		t.Fatalf("orphan's pid: %q", buf[:n])
	}
	waitDone(t, parent)
	// Reaped, its /proc entry goes away; unreaped it would stay a zombie.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d not reaped in 20 s", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
