package fact

import (
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// NotifyEnv names the environment variable in which the supervisor tells a
// module process which of its file descriptors is its readiness pipe: the
// write end of a pipe made for this one process start, as s6 hands a
// daemon its notification-fd. The process writes a line on it once it is
// ready and closes it; a process started again gets a new pipe, so
// readiness belongs to one start and no clock is involved.
const NotifyEnv = "GRIDNODE_NOTIFY_FD"

// notifier is this process's end of its readiness pipe.
var notifier struct {
	sync.Mutex
	taken bool     // NotifyEnv has been read (and unset)
	w     *os.File // nil when there is none, or once used
	on    string   // the fact whose first publication is readiness
}

// ReadyOnPublish makes the first successful Write of the fact name in this
// process report readiness (see Ready): a module is ready once it has
// published its fact. The module runner calls it, once for every module,
// before the module runs. A module that must do more before it is ready
// (pull images) publishes its fact under another name until then, or calls
// Ready itself instead.
func ReadyOnPublish(name string) error {
	notifier.Lock()
	defer notifier.Unlock()
	notifier.on = name
	return takeLocked()
}

// Ready tells the supervisor that this process is ready: it writes a line on
// the readiness pipe and closes it. Later calls do nothing, and so does a
// process started without a pipe (a module run by hand).
func Ready() error {
	notifier.Lock()
	defer notifier.Unlock()
	if err := takeLocked(); err != nil {
		return err
	}
	if notifier.w == nil {
		return nil
	}
	_, err := notifier.w.Write([]byte("\n"))
	notifier.w.Close()
	notifier.w = nil
	if err != nil {
		return fmt.Errorf("fact: telling the supervisor this process is ready: %w", err)
	}
	return nil
}

// published is called after the fact name was written.
func published(name string) error {
	notifier.Lock()
	on := notifier.on
	notifier.Unlock()
	if on == "" || name != on {
		return nil
	}
	return Ready()
}

// takeLocked takes the readiness pipe out of the environment, once: the
// variable is unset and the descriptor closed on exec, so that programs
// this process starts neither hold the pipe open nor write on it.
func takeLocked() error {
	if notifier.taken {
		return nil
	}
	notifier.taken = true
	v, ok := os.LookupEnv(NotifyEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(NotifyEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return fmt.Errorf("fact: $%s is %q, not a descriptor above 2; readiness cannot be reported", NotifyEnv, v)
	}
	// Only a pipe: a stale variable must not make us write on whatever
	// file happens to have that number.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fmt.Errorf("fact: $%s names descriptor %d, which is not a pipe; readiness cannot be reported", NotifyEnv, fd)
	}
	unix.CloseOnExec(fd)
	notifier.w = os.NewFile(uintptr(fd), "readiness pipe")
	return nil
}
