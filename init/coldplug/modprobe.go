package coldplug

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gridnode/gridnode/node/modalias"
	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// Kernel is what loading modules needs of the kernel.
type Kernel interface {
	// Loaded lists the modules loaded now.
	Loaded() ([]string, error)
	// Insert loads one module file (a path under the modules folder),
	// without its dependencies, with the parameters params ("a=1 b=2").
	// A module already loaded is no error.
	Insert(path, params string) error
}

// SysKernel is the running kernel: /proc/modules and finit_module(2),
// through u-root's kmodule (which also reads compressed modules).
type SysKernel struct{}

// Loaded reads /proc/modules.
func (SysKernel) Loaded() ([]string, error) { return ReadModules() }

// Insert loads the module file at path.
func (SysKernel) Insert(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := kmodule.FileInit(f, params, 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

// deps is a parsed modules.dep: each module's file and what it needs.
type deps struct {
	path map[string]string   // module → path relative to the modules folder
	need map[string][]string // module → its hard dependencies
}

func parseDeps(r io.Reader) (deps, error) {
	d := deps{path: map[string]string{}, need: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		p, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		m := moduleName(p)
		d.path[m] = strings.TrimSpace(p)
		for _, x := range strings.Fields(rest) {
			d.need[m] = append(d.need[m], moduleName(x))
		}
	}
	return d, sc.Err()
}

// state is one module's load, shared by every goroutine that wants it.
type state struct {
	done chan struct{} // closed when the load finished
	err  error
}

// load loads module m: its soft "pre" dependencies (best effort), its hard
// dependencies (each with its own soft ones), m, then its soft "post"
// dependencies. A module is loaded once; later callers wait for the first
// and share its result.
//
// A soft dependency that fails is no failure: soft dependencies name
// alternatives, such as the two providers of "crct10dif" (crct10dif_pclmul,
// which a CPU without PCLMULQDQ refuses with ENODEV, and the generic one),
// and the module above them works with whichever loaded. A hard dependency
// that fails fails m, naming it.
func (l *Loader) load(m string, stack []string) error {
	for _, s := range stack {
		if s == m {
			return fmt.Errorf("circular dependency %s → %s", strings.Join(stack, " → "), m)
		}
	}
	l.mu.Lock()
	st, ok := l.states[m]
	if !ok {
		st = &state{done: make(chan struct{})}
		l.states[m] = st
	}
	l.mu.Unlock()
	if ok {
		<-st.done
		return st.err
	}
	defer close(st.done)
	st.err = l.insertWithDeps(m, append(stack, m))
	return st.err
}

func (l *Loader) insertWithDeps(m string, stack []string) error {
	path, ok := l.deps.path[m]
	if !ok {
		return fmt.Errorf("%s is not in %s", m, filepath.Join(l.dir, "modules.dep"))
	}
	sd := l.softdeps[m]
	l.loadSoft(sd.Pre, stack)
	for _, d := range l.deps.need[m] {
		if err := l.load(d, stack); err != nil {
			return fmt.Errorf("needs %s: %w", d, err)
		}
	}
	if err := l.Kernel.Insert(filepath.Join(l.dir, path), l.Params[m]); err != nil {
		return err
	}
	l.loadSoft(sd.Post, stack)
	return nil
}

// loadSoft loads soft dependencies, each a module or an alias of several,
// and ignores their failures. One that is loading elsewhere is not waited
// for: soft dependencies may form cycles, and the kernel waits for a module
// being loaded when another asks for it.
func (l *Loader) loadSoft(names []string, stack []string) {
	for _, n := range names {
		for _, m := range l.Resolve(n) {
			l.mu.Lock()
			_, started := l.states[m]
			l.mu.Unlock()
			if !started {
				l.load(m, stack)
			}
		}
	}
}

// markLoaded records modules the kernel has already (loaded before us, or
// built in) as done.
func (l *Loader) markLoaded(mods []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range mods {
		m = modalias.Normalize(m)
		if _, ok := l.states[m]; !ok {
			st := &state{done: make(chan struct{})}
			close(st.done)
			l.states[m] = st
		}
	}
}

// DefaultParams are module parameters of every boot, before the command
// line's (which win: the kernel applies a module's parameters in order).
// The watchdog core keeps a running watchdog running across a reboot,
// the kexec into a release on trial among them: nothing but the upgrade
// module starts the watchdog, and only for that jump, whose guard must
// not be stopped by the reboot notifier on the way (README, kexec trials).
const DefaultParams = "watchdog.stop_on_reboot=0"

// ModuleParams reads the parameters of loadable modules from a kernel
// command line, as modprobe does: the kernel applies "MODULE.PARAM=VALUE"
// only to built-in code, and leaves those of a module loaded later to
// whoever loads it. An upgrade's trial boot depends on it:
// watchdog.stop_on_reboot=0 keeps the hardware watchdog running across
// the kexec into the release on trial.
func ModuleParams(cmdline string) map[string]string {
	p := map[string]string{}
	for _, tok := range strings.Fields(cmdline) {
		k, v, hasValue := strings.Cut(tok, "=")
		mod, param, ok := strings.Cut(k, ".")
		if !ok || mod == "" || param == "" || strings.ContainsAny(mod, "/\"") || mod == "gridnode" {
			continue
		}
		kv := param
		if hasValue {
			kv += "=" + v
		}
		mod = modalias.Normalize(mod)
		if p[mod] != "" {
			kv = p[mod] + " " + kv
		}
		p[mod] = kv
	}
	return p
}
