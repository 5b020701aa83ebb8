package console

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// procRoot is where process information is read; tests replace it.
var procRoot = "/proc"

// processMemory is the memory of one gridnode process.
type processMemory struct {
	Name     string // "init" for PID 1, else the module's name
	PID      int
	RSS, PSS uint64 // bytes
}

// nodeMemory lists the memory of every gridnode process: PID 1 and the
// modules it runs (`/init module NAME`), found as the processes whose
// executable is this one's. RSS counts the pages a process maps, so pages
// the processes share (the binary's text) are counted in each; PSS divides
// shared pages among their users, so the PSS of all processes adds up to the
// memory they take together.
func nodeMemory() []processMemory {
	self, err := os.Readlink(filepath.Join(procRoot, "self", "exe"))
	if err != nil {
		return nil
	}
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	var l []processMemory
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join(procRoot, e.Name())
		if exe, err := os.Readlink(filepath.Join(dir, "exe")); err != nil || exe != self {
			continue
		}
		p := processMemory{PID: pid, Name: "init"}
		if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
			args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
			if len(args) >= 3 && args[1] == "module" {
				p.Name = args[2]
			} else if pid != 1 && len(args) >= 2 {
				p.Name = strings.Join(args[1:], " ")
			}
		}
		p.RSS = kbField(filepath.Join(dir, "status"), "VmRSS:")
		p.PSS = kbField(filepath.Join(dir, "smaps_rollup"), "Pss:")
		if p.RSS == 0 {
			continue // exited meanwhile, or a zombie
		}
		l = append(l, p)
	}
	sort.Slice(l, func(i, j int) bool { return l[i].PID < l[j].PID })
	return l
}

// kbField reads "KEY  N kB" from a /proc file, in bytes; 0 when absent.
func kbField(path, key string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			var n uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d", &n); err == nil {
				return n << 10
			}
		}
	}
	return 0
}
