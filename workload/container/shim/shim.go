// Package shim is the container helper that runs beside /init: the only
// program of the node linked with runc's libcontainer (whose nsenter is C
// and whose seccomp needs libseccomp), so that PID 1 and the modules stay
// pure Go.
//
// One helper process runs per container start, in a session of its own: it
// mounts the root file system, starts the container through libcontainer,
// tells its starter the container's pid on stdout, and then stays the
// container's parent. When the container's init exits it records the exit
// in the bundle (exit.json, written atomically), takes the container and its
// root file system down, and exits. Because it is neither the module nor a
// child the module's process group holds, a workloads module that crashes or
// restarts leaves running containers running; the module finds the helper
// again by the pid in the bundle and learns the exit from exit.json. A
// helper that is itself killed leaves no exit.json: the module then deletes
// the container (kill, cgroup, mounts) and counts an unknown exit.
package shim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gridnode/gridnode/workload/container"
)

const usage = `usage: gridnode-container COMMAND ...
  run BUNDLE       start the container of BUNDLE (config.json), wait for it, record exit.json
  kill BUNDLE SIG  send a signal (a number) to the container's init
  delete BUNDLE    kill the container if it runs, remove its cgroup, state and mounts
  stats BUNDLE     print the container's cgroup statistics as JSON
  parent JSON      create or update the cgroup every workload runs under, with its caps
`

// Run is the helper's main.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if err := run(args, stdout); err != nil {
		fmt.Fprintf(stderr, "gridnode-container: %v\n", err)
		return 1
	}
	return 0
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(strings.TrimSpace(usage))
	}
	need := map[string]int{"run": 1, "kill": 2, "delete": 1, "stats": 1, "parent": 1}
	n, ok := need[args[0]]
	if !ok || len(args)-1 != n {
		return fmt.Errorf("bad arguments %q\n%s", args, strings.TrimSpace(usage))
	}
	switch args[0] {
	case "run":
		return runContainer(args[1], stdout)
	case "kill":
		sig, err := strconv.Atoi(args[2])
		if err != nil {
			return fmt.Errorf("kill: signal %q is not a number", args[2])
		}
		return kill(args[1], syscall.Signal(sig))
	case "delete":
		return remove(args[1])
	case "stats":
		return stats(args[1], stdout)
	default:
		return parent(args[1])
	}
}

// subreaper makes orphans of the container's processes come to this helper,
// not to PID 1, so the helper sees its whole container end.
func subreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

func bundlePath(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(abs, container.ConfigFile)); err != nil {
		return "", fmt.Errorf("bundle %s: %w", abs, err)
	}
	return abs, nil
}
