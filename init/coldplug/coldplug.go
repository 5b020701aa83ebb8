// Package coldplug loads the kernel modules that the machine's devices need:
// at boot for every device under /sys that has a modalias (coldplug), and
// later for every device the kernel announces on the uevent netlink socket
// (hotplug). Matching is modprobe's: each modalias against the glob patterns
// of modules.alias; loading is modprobe's too: hard dependencies from
// modules.dep, soft ones (alternatives, tried and allowed to fail) from
// modules.softdep, each module file inserted by u-root's kmodule. No driver
// list is hard-coded: the image decides which modules exist.
//
// The fact "coldplug" it publishes:
//
//	{"loaded": ["virtio_blk", "virtio_net", ...],   // sorted module names
//	 "failed": {"module": "error", ...},
//	 "modalias": {"virtio_net": "virtio:d00000001v00001AF4", ...}}  // the device that wanted it
package coldplug

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/node/modalias"
	"golang.org/x/sys/unix"
)

// Loader matches modaliases to modules and loads them.
type Loader struct {
	// Sys is the sysfs mount [/sys].
	Sys string
	// Logf prints a line on the console.
	Logf func(format string, args ...any)
	// Kernel loads module files [SysKernel].
	Kernel Kernel
	// Params are the parameters each module is loaded with, by module
	// name [ModuleParams of /proc/cmdline].
	Params map[string]string
	// Publish publishes the fact "coldplug" [fact.Write]; nil-able in tests with NoPublish.
	Publish   func(name string, v any) error
	NoPublish bool

	dir      string
	aliases  *modalias.Aliases
	softdeps modalias.Softdeps
	deps     deps

	mu       sync.Mutex
	devices  map[string][]string // modalias → sysfs folders of the devices that have it
	states   map[string]*state   // module → its load, once started
	kernelUp sync.Once           // reads what the kernel has loaded, once
	poolOnce sync.Once           // starts the entropy watch, once
	loaded   map[string]string   // module → modalias
	failed   map[string]string   // module → error
	attempts map[string]bool
}

// ModulesDir is the running kernel's module folder, /lib/modules/$(uname -r).
func ModulesDir() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("coldplug: uname: %w", err)
	}
	return filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:])), nil
}

// New reads modules.alias, modules.dep and (if present) modules.softdep from
// dir, a /lib/modules/VERSION folder.
func New(dir string) (*Loader, error) {
	l := &Loader{
		Sys:      "/sys",
		Logf:     func(string, ...any) {},
		Publish:  fact.Write,
		Kernel:   SysKernel{},
		Params:   ModuleParams(DefaultParams + " " + readCmdline()),
		dir:      dir,
		states:   map[string]*state{},
		devices:  map[string][]string{},
		loaded:   map[string]string{},
		failed:   map[string]string{},
		attempts: map[string]bool{},
	}
	f, err := os.Open(filepath.Join(dir, "modules.alias"))
	if err != nil {
		return nil, fmt.Errorf("coldplug: %w (the image has no kernel modules for this kernel; check the kernel version the image was built with)", err)
	}
	l.aliases, err = modalias.ParseAliases(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("coldplug: reading modules.alias: %w", err)
	}
	f, err = os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("coldplug: %w", err)
	}
	l.deps, err = parseDeps(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("coldplug: reading modules.dep: %w", err)
	}
	l.softdeps = modalias.Softdeps{}
	if f, err := os.Open(filepath.Join(dir, "modules.softdep")); err == nil {
		l.softdeps, err = modalias.ParseSoftdeps(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("coldplug: reading modules.softdep: %w", err)
		}
	}
	return l, nil
}

// moduleName turns "kernel/drivers/net/virtio_net.ko.xz" into "virtio_net".
func moduleName(path string) string {
	b := filepath.Base(strings.TrimSpace(path))
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return modalias.Normalize(b)
}

// Load loads one module with what it needs (see load). The first call
// learns what the kernel has loaded already.
func (l *Loader) Load(module string) error {
	l.kernelUp.Do(func() {
		if mods, err := l.Kernel.Loaded(); err == nil {
			l.markLoaded(mods)
		}
	})
	return l.load(modalias.Normalize(module), nil)
}

// Resolve returns the modules a name stands for: itself if it is a module,
// else the modules its alias matches (as modprobe resolves "fs-vfat").
func (l *Loader) Resolve(name string) []string {
	if n := modalias.Normalize(name); l.deps.path[n] != "" {
		return []string{n}
	}
	var mods []string
	for _, m := range l.aliases.Match(name) {
		mods = append(mods, modalias.Normalize(m))
	}
	return mods
}

// Modprobe loads name (a module or an alias) the way the kernel's
// request_module expects of /sbin/modprobe. An alias that several modules
// provide ("crypto-crct10dif": a CPU-specific one and a generic one) is
// served when one of them loads; it fails only when all do.
func (l *Loader) Modprobe(name string) error {
	mods := l.Resolve(name)
	if len(mods) == 0 {
		return fmt.Errorf("modprobe: %q: no such module or alias in %s", name, l.dir)
	}
	var errs []error
	for _, m := range mods {
		if err := l.Load(m); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m, err))
		}
	}
	if len(errs) < len(mods) {
		return nil
	}
	return errors.Join(errs...)
}

// Handle loads the modules one device's modalias matches, each module once
// per boot. It says how many modules it loaded that were not loaded before.
func (l *Loader) Handle(alias, tag string) int {
	n := 0
	var failed []string
	for _, m := range l.aliases.Match(alias) {
		m = modalias.Normalize(m)
		l.mu.Lock()
		if l.attempts[m] {
			l.mu.Unlock()
			continue
		}
		l.attempts[m] = true
		l.mu.Unlock()

		err := l.Load(m)
		l.mu.Lock()
		if err != nil {
			l.failed[m] = err.Error()
			l.Logf("%s: cannot load %s (%s): %v", tag, m, alias, err)
			failed = append(failed, fmt.Sprintf("%s failed: %v", m, err))
		} else {
			l.loaded[m] = alias
			n++
			l.Logf("%s: loaded %s (%s)", tag, m, alias)
		}
		l.mu.Unlock()
	}
	if len(failed) > 0 {
		l.sayUnclaimed(tag, alias, strings.Join(failed, "; "))
	}
	return n
}

// Modaliases returns the modalias of every device, sorted and without
// duplicates. Only devices on a bus have one, so it reads
// Sys/bus/*/devices/*/modalias, as udev's coldplug does: walking all of
// Sys/devices reads thousands of attributes and takes half a second on an
// emulated machine. Without Sys/bus (a test tree) it walks Sys/devices.
func (l *Loader) Modaliases() []string {
	seen := map[string]bool{}
	add := func(p string) {
		if b, err := os.ReadFile(p); err == nil {
			if s := strings.TrimSpace(string(b)); s != "" {
				seen[s] = true
				l.addDevice(s, filepath.Dir(p))
			}
		}
	}
	if buses, err := os.ReadDir(filepath.Join(l.Sys, "bus")); err == nil {
		for _, b := range buses {
			dir := filepath.Join(l.Sys, "bus", b.Name(), "devices")
			devs, _ := os.ReadDir(dir)
			for _, d := range devs {
				add(filepath.Join(dir, d.Name(), "modalias"))
			}
		}
	} else {
		filepath.WalkDir(filepath.Join(l.Sys, "devices"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "modalias" && !d.IsDir() {
				add(p)
			}
			return nil // a device that went away while we walked is no error
		})
	}
	list := make([]string, 0, len(seen))
	for s := range seen {
		list = append(list, s)
	}
	sort.Strings(list)
	return list
}

// Coldplug loads modules for every device present, and for the devices
// that appear as drivers load: a bus driver (virtio_pci) makes new devices
// (virtio0, virtio1) appear. It publishes the fact and returns it.
//
// Devices are probed while their module initialises, and some probes wait
// for hardware (a SATA link, a disk's partition table), so several modules
// load at once; the kernel serialises loads of one module, so two devices
// sharing a dependency are fine. A load that made something new looks for
// new devices at once rather than after the slowest load of its round:
// the virtio disk and NIC need not wait for ahci probing its SATA ports.
func (l *Loader) Coldplug() fact.Coldplug {
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
		mu   sync.Mutex
		seen = map[string]bool{}
		scan func()
	)
	scan = func() {
		for _, m := range l.Modaliases() {
			mu.Lock()
			done := seen[m]
			seen[m] = true
			mu.Unlock()
			if done {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				n := l.Handle(m, "coldplug")
				<-sem
				if n > 0 {
					scan()
				}
			}()
		}
	}
	scan()
	wg.Wait()
	// The hardware RNG drivers (virtio_rng, the chipsets', TPMs built in)
	// have loaded by now: if the random pool is still not ready, say so.
	l.poolOnce.Do(func() { go sysPool.watch(l.Logf) })
	return l.publish()
}

// Fact returns what was loaded and what failed so far.
func (l *Loader) Fact() fact.Coldplug {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := fact.Coldplug{Loaded: []string{}, Failed: map[string]string{}, Modalias: map[string]string{}}
	for m, a := range l.loaded {
		f.Loaded = append(f.Loaded, m)
		f.Modalias[m] = a
	}
	sort.Strings(f.Loaded)
	for m, e := range l.failed {
		f.Failed[m] = e
	}
	return f
}

func (l *Loader) publish() fact.Coldplug {
	f := l.Fact()
	f.At = fact.SinceBoot().Seconds()
	if !l.NoPublish {
		if err := l.Publish(fact.NameColdplug, f); err != nil {
			l.Logf("coldplug: cannot publish fact: %v", err)
		}
	}
	return f
}

// Uevents is the kernel's uevent netlink socket.
type Uevents struct{ f *os.File }

// OpenUevents subscribes to the kernel's uevents. Open it before Coldplug so
// that no device appearing in between is missed.
func OpenUevents() (*Uevents, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("hotplug: uevent socket: %w", err)
	}
	// A burst of devices must not overflow the queue while we load modules.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hotplug: binding uevent socket: %w", err)
	}
	return &Uevents{f: os.NewFile(uintptr(fd), "uevent")}, nil
}

// Close stops the socket; a pending Hotplug returns.
func (u *Uevents) Close() error { return u.f.Close() }

// Uevent is one kernel event.
type Uevent struct {
	Action, Devpath string
	Env             map[string]string
}

// ParseUevent parses a kernel uevent message: "ACTION@DEVPATH\0KEY=VALUE\0...".
func ParseUevent(b []byte) (Uevent, bool) {
	parts := bytes.Split(b, []byte{0})
	head := string(parts[0])
	action, devpath, ok := strings.Cut(head, "@")
	if !ok {
		return Uevent{}, false // udev's own messages start with "libudev"
	}
	ev := Uevent{Action: action, Devpath: devpath, Env: map[string]string{}}
	for _, p := range parts[1:] {
		if k, v, ok := strings.Cut(string(p), "="); ok {
			ev.Env[k] = v
		}
	}
	return ev, true
}

// Hotplug loads modules for devices the kernel adds, until ctx is done or
// the socket is closed, republishing the fact when it loads something.
func (l *Loader) Hotplug(ctx context.Context, u *Uevents) error {
	go func() {
		<-ctx.Done()
		u.Close()
	}()
	buf := make([]byte, 64*1024)
	for {
		n, err := u.f.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, unix.ENOBUFS) {
				// We lost events: catch up by walking /sys again.
				l.Logf("hotplug: uevent queue overflowed; rescanning devices")
				l.Coldplug()
				continue
			}
			return fmt.Errorf("hotplug: reading uevents: %w", err)
		}
		ev, ok := ParseUevent(buf[:n])
		if !ok || ev.Action != "add" || ev.Env["MODALIAS"] == "" {
			continue
		}
		l.addDevice(ev.Env["MODALIAS"], filepath.Join(l.Sys, ev.Devpath))
		if l.Handle(ev.Env["MODALIAS"], "hotplug") > 0 {
			// A new bus may bring devices whose add events we see next,
			// but also devices that existed before we could load their
			// driver's dependencies: walk once more.
			l.Coldplug()
		}
	}
}

// ReadModules lists the modules in /proc/modules, sorted.
func ReadModules() ([]string, error) {
	f, err := os.Open("/proc/modules")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var l []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if n, _, ok := strings.Cut(sc.Text(), " "); ok {
			l = append(l, n)
		}
	}
	sort.Strings(l)
	return l, sc.Err()
}

// readCmdline is the running kernel's command line, "" where there is none.
func readCmdline() string {
	b, _ := os.ReadFile("/proc/cmdline")
	return string(b)
}
