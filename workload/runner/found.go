package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/workload/container"
)

// Find looks at the kernel and the runtime's folder for what workloads
// hold on the node: their processes and the helpers, cgroups, network
// namespaces, veths, forwarding rules, mounts and root file systems. It
// reads what is there, not what this runtime remembers, so that a test or
// a person can see that a removed instance left nothing behind.
func (r *Runtime) Find(ctx context.Context) (fact.WorkloadsFound, error) {
	var f fact.WorkloadsFound
	var errs []error
	f.Processes = processes(r.o.Helper)
	// Below the workloads cgroup, the instances' (and their children's):
	// on the node's cgroup v2, and in each hierarchy of a cgroup v1
	// machine (a developer's).
	v1, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", r.o.Cgroup))
	for _, base := range append([]string{filepath.Join("/sys/fs/cgroup", r.o.Cgroup)}, v1...) {
		filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && p != base {
				f.Cgroups = append(f.Cgroups, strings.TrimPrefix(p, "/sys/fs/cgroup"))
			}
			return nil
		})
	}
	ns, err := r.net.List()
	errs = append(errs, err)
	f.Namespaces = ns
	f.Links, f.Rules, err = r.net.Found()
	errs = append(errs, err)
	f.Mounts, err = mountsUnder(r.o.Dir)
	errs = append(errs, err)
	ents, _ := os.ReadDir(filepath.Join(r.o.Dir, "containers"))
	for _, e := range ents {
		f.RootFS = append(f.RootFS, e.Name())
	}
	return f, errors.Join(errs...)
}

// processes lists the container helpers ("PID UID gridnode-container run
// INSTANCE") and every process whose real uid is in a workload range
// ("PID UID NAME", the kernel's 15-byte name, not its arguments).
func processes(helper string) []string {
	var l []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var uid int
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				if fs := strings.Fields(rest); len(fs) > 0 {
					uid, _ = strconv.Atoi(fs[0])
				}
			}
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		switch {
		case args[0] == helper && len(args) > 2:
			// "gridnode-container run BUNDLE": the instance is the
			// bundle folder's name.
			l = append(l, fmt.Sprintf("%d %d %s %s %s", pid, uid, filepath.Base(helper), args[1], filepath.Base(args[2])))
		case uid >= container.FirstHostID:
			// The program's name only: a workload's arguments may hold
			// what its owner would not publish, and the fact is public.
			comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
			l = append(l, fmt.Sprintf("%d %d %s", pid, uid, strings.TrimSpace(string(comm))))
		}
	}
	return l
}

// mountsUnder lists the mount points below dir (mountinfo's fifth field).
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var l []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) > 4 && strings.HasPrefix(fs[4], dir+"/") {
			l = append(l, fs[4])
		}
	}
	return l, s.Err()
}
