package fact

import (
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// readinessPipe hands this process a readiness pipe as the supervisor
// would: its write end under a descriptor number named in NotifyEnv. It
// returns the read end. The notifier's state is reset for each test.
func readinessPipe(t *testing.T) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// A descriptor of its own, as a child's fd 3 would be: the notifier
	// owns and closes it.
	fd, err := unix.Dup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { r.Close() })
	resetNotifier(t)
	t.Setenv(NotifyEnv, strconv.Itoa(fd))
	return r
}

func resetNotifier(t *testing.T) {
	notifier.Lock()
	if notifier.w != nil {
		notifier.w.Close()
	}
	notifier.taken, notifier.w, notifier.on = false, nil, ""
	notifier.Unlock()
	t.Cleanup(func() {
		notifier.Lock()
		if notifier.w != nil {
			notifier.w.Close()
		}
		notifier.taken, notifier.w, notifier.on = false, nil, ""
		notifier.Unlock()
	})
}

// readAll reads the pipe to its end (every write end closed), with a deadline.
func readAll(t *testing.T, r *os.File) string {
	t.Helper()
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading the readiness pipe: %v (still open?)", err)
	}
	return string(b)
}

// TestReadyOnPublish: the first Write of the process's own fact writes one
// line on the pipe and closes it; other facts before it say nothing, and
// later writes nothing more.
func TestReadyOnPublish(t *testing.T) {
	r := readinessPipe(t)
	d := Folder(t.TempDir())
	if err := ReadyOnPublish("hardware"); err != nil {
		t.Fatal(err)
	}
	if _, ok := os.LookupEnv(NotifyEnv); ok {
		t.Errorf("$%s still set: programs the module starts would inherit it", NotifyEnv)
	}
	if err := d.Write("hardware-progress", 1); err != nil {
		t.Fatal(err)
	}
	r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _ := r.Read(make([]byte, 1)); n != 0 {
		t.Fatal("readiness reported before the module published its own fact")
	}
	for i := range 3 {
		if err := d.Write("hardware", i); err != nil {
			t.Fatal(err)
		}
	}
	if got := readAll(t, r); got != "\n" {
		t.Errorf("the pipe carried %q, want one newline then its end", got)
	}
}

// TestReadyWithoutPipe: a module run by hand has no pipe; readiness is then
// nothing to report, and publishing works as ever.
func TestReadyWithoutPipe(t *testing.T) {
	resetNotifier(t)
	os.Unsetenv(NotifyEnv)
	if err := ReadyOnPublish("x"); err != nil {
		t.Fatal(err)
	}
	if err := Folder(t.TempDir()).Write("x", 1); err != nil {
		t.Fatal(err)
	}
	if err := Ready(); err != nil {
		t.Fatal(err)
	}
}

// TestReadyRefusesNonPipe: a stale variable naming a descriptor that is not
// a pipe is an error that says so, and nothing is written on that file.
func TestReadyRefusesNonPipe(t *testing.T) {
	resetNotifier(t)
	f, err := os.Create(t.TempDir() + "/not-a-pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Setenv(NotifyEnv, strconv.Itoa(int(f.Fd())))
	err = Ready()
	if err == nil || !strings.Contains(err.Error(), "not a pipe") {
		t.Fatalf("Ready with a regular file as its pipe: %v, want an error saying it is not a pipe", err)
	}
	if fi, _ := f.Stat(); fi.Size() != 0 {
		t.Errorf("Ready wrote %d bytes on a file that is not its pipe", fi.Size())
	}
}

// TestReadyPipeClosedOnExec: the pipe is kept from programs the module
// starts, which would otherwise hold it open or write on it.
func TestReadyPipeClosedOnExec(t *testing.T) {
	readinessPipe(t)
	if err := ReadyOnPublish("x"); err != nil {
		t.Fatal(err)
	}
	notifier.Lock()
	fd := int(notifier.w.Fd())
	notifier.Unlock()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("readiness descriptor %d: flags %#x (%v), want close-on-exec", fd, flags, err)
	}
}
