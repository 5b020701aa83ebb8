package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gridnode/gridnode/init/bootmedium"
	"github.com/gridnode/gridnode/init/coldplug"
	"github.com/gridnode/gridnode/init/mounts"
	"github.com/gridnode/gridnode/init/powerbutton"
	"github.com/gridnode/gridnode/init/supervisor"
	"github.com/gridnode/gridnode/init/supervisor/reap"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/upgrade/kexec"
	"golang.org/x/sys/unix"
)

// mediumWait is how long PID 1 waits for the boot medium on iso and usb boots.
const mediumWait = 30 * time.Second

// mediumDir is where the boot medium is mounted, read-only.
const mediumDir = "/run/gridnode/medium"

// console serialises whole lines onto /dev/console.
type console struct {
	mu sync.Mutex
	w  io.Writer
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(p)
}

// Printf writes one line.
func (c *console) Printf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	io.WriteString(c, s)
}

// openConsole makes /dev/console our standard streams: the kernel hands
// init no streams when the initramfs has no /dev/console node.
func openConsole() *console {
	f, err := os.OpenFile("/dev/console", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return &console{w: os.Stdout}
	}
	for fd := 0; fd < 3; fd++ {
		unix.Dup3(int(f.Fd()), fd, 0)
	}
	if f.Fd() > 2 {
		f.Close()
	}
	return &console{w: os.Stdout}
}

// An ending is what PID 1 does last, once every module has stopped in
// order and the file systems are unmounted. A kexec into the next release
// (the upgrade module) is one more ending: its do is
// reboot(LINUX_REBOOT_CMD_KEXEC) into the kernel loaded beforehand, and
// the ordered stop before it is the same as for a power-off.
type ending struct {
	say string       // on the console when the ending is asked for
	do  func() error // does not return when it works
	// orElse is what PID 1 does when do fails.
	orElse *ending
}

var (
	powerOff = ending{say: "gridnode: powering off", do: func() error { return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF) }}
	reboot   = ending{say: "gridnode: rebooting", do: func() error { return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART) }}
	// kexecInto jumps into the kernel the upgrade module loaded. If the
	// jump fails the machine reboots: the boot medium still boots the
	// release it booted before (the new one is the default only once its
	// trial passed), so nothing is lost but the time of a boot.
	kexecInto = ending{say: "gridnode: jumping into the loaded release (kexec)", do: kexec.Jump, orElse: &reboot}
)

// shutdown is what PID 1 was asked to do at the end: the first request
// wins.
type shutdown struct {
	once   sync.Once
	end    ending
	cancel context.CancelFunc
}

func (s *shutdown) request(con *console, e ending) {
	s.once.Do(func() {
		s.end = e
		con.Printf("%s", e.say)
		s.cancel()
	})
}

// pid1 is the node's init. It never returns: after an orderly shutdown it
// reboots or powers the machine off, and if that fails it idles.
func pid1() {
	mountErrs := mounts.Do(mounts.Early)
	con := openConsole()
	con.Printf("gridnode: init %s", version)
	for _, err := range mountErrs {
		con.Printf("gridnode: warning: %v", err)
	}
	os.Setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
	// Every orphan of the system is ours to reap, from now until the end,
	// whatever becomes of the rest of PID 1.
	reap.Run()

	ctx, cancel := context.WithCancel(context.Background())
	sd := &shutdown{cancel: cancel}
	// Ctrl-Alt-Del becomes SIGINT to us instead of an immediate reboot.
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		con.Printf("gridnode: warning: cannot hand Ctrl-Alt-Del to init: %v", err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGINT, syscall.SIGPWR, kexec.Request)
	go func() {
		for sig := range sigs {
			switch {
			case sig == syscall.SIGINT:
				sd.request(con, reboot)
			case sig == kexec.Request && kexec.Loaded():
				sd.request(con, kexecInto)
			case sig == kexec.Request:
				// A stray signal must not become a reboot.
				con.Printf("gridnode: a kexec was asked for, but no kernel is loaded for one; ignored")
			default:
				sd.request(con, powerOff)
			}
		}
	}()

	func() {
		defer func() {
			if v := recover(); v != nil {
				con.Printf("gridnode: init failed: %v\n%s", v, debug.Stack())
				con.Printf("gridnode: init keeps running; power off with Ctrl-Alt-Del or /init poweroff")
			}
		}()
		boot(ctx, con, sd)
	}()
	// Normally boot returns once every module stopped. If it failed, the
	// modules it started are on their own (the reaper still collects them)
	// until a shutdown is asked for.
	<-ctx.Done()
	finish(con, sd.end)
}

// finish syncs, unmounts and ends as asked. It never returns.
func finish(con *console, e ending) {
	func() {
		defer func() { recover() }()
		mounts.UnmountAll(func(f string, a ...any) { con.Printf("gridnode: "+f, a...) })
	}()
	if e.do == nil {
		e = powerOff
	}
	for next := &e; next != nil; next = next.orElse {
		err := next.do()
		if next.orElse != nil {
			con.Printf("gridnode: %s failed: %v; %s instead", strings.TrimPrefix(next.say, "gridnode: "), err, strings.TrimPrefix(next.orElse.say, "gridnode: "))
			continue
		}
		con.Printf("gridnode: reboot(2) failed: %v; idling", err)
	}
	for {
		time.Sleep(time.Hour)
	}
}

// boot does PID 1's work and returns when ctx is done and every module has
// stopped.
func boot(ctx context.Context, con *console, sd *shutdown) {
	self, err := os.Executable()
	if err != nil {
		self = "/init"
	}
	// The kernel asks for modules it needs on its own (file systems,
	// character sets) by running this program as modprobe.
	if err := os.WriteFile("/proc/sys/kernel/modprobe", []byte(self), 0o644); err != nil {
		con.Printf("gridnode: warning: cannot set the kernel's modprobe helper: %v", err)
	}
	for _, d := range []string{fact.DefaultDir, filepath.Join(fact.DefaultDir, "log")} {
		os.MkdirAll(d, 0o755)
	}
	unix.Sethostname([]byte("gridnode"))

	loader := startDrivers(ctx, con)
	go func() {
		defer func() { recover() }()
		powerbutton.Watch(ctx, "/sys", "/dev", func() { sd.request(con, powerOff) })
	}()
	if ctx.Err() != nil {
		return
	}
	cfg := loadConfig(ctx, con, loader)
	if err := fact.Write(fact.NameConfig, cfg); err != nil {
		con.Printf("gridnode: warning: cannot publish the configuration: %v", err)
	}
	host := cfg.Hostname
	if host == "" {
		host = "gridnode"
	}
	if err := unix.Sethostname([]byte(host)); err != nil {
		con.Printf("gridnode: warning: hostname %q: %v", host, err)
	}
	if ctx.Err() != nil {
		return
	}
	supervise(ctx, con, cfg, self)
}

// startDrivers loads the drivers of the devices present, then keeps
// loading drivers for devices that appear.
func startDrivers(ctx context.Context, con *console) *coldplug.Loader {
	dir, err := coldplug.ModulesDir()
	if err != nil {
		con.Printf("coldplug: %v", err)
		return nil
	}
	loader, err := coldplug.New(dir)
	if err != nil {
		con.Printf("coldplug: %v; no drivers will be loaded", err)
		fact.Write(fact.NameColdplug, fact.Coldplug{Loaded: []string{}, Failed: map[string]string{"*": err.Error()}})
		return nil
	}
	loader.Logf = con.Printf
	// Subscribe before the walk so that no device is missed in between.
	ue, err := coldplug.OpenUevents()
	if err != nil {
		con.Printf("hotplug: %v; devices added later will lack drivers", err)
	}
	t0 := time.Now()
	f := loader.Coldplug()
	con.Printf("coldplug: %d modules loaded, %d failed, in %s", len(f.Loaded), len(f.Failed), time.Since(t0).Round(time.Millisecond))
	// Every node with a disk mounts its cache, an ext4 file system: load
	// ext4 while the hardware module probes, rather than when the storage
	// module first mounts (the kernel's modprobe call then costs half a
	// second on an emulated machine, on the way to ready). Not beside
	// coldplug: there it slows the device drivers by as much.
	go loader.Modprobe("fs-ext4")
	if ue != nil {
		go func() {
			defer func() {
				if v := recover(); v != nil {
					con.Printf("hotplug: stopped: %v", v)
				}
			}()
			if err := loader.Hotplug(ctx, ue); err != nil {
				con.Printf("%v", err)
			}
		}()
	}
	return loader
}

// loadConfig merges the configuration: defaults, the image's file, the boot
// medium's gridnode.conf, the kernel command line, later ones winning. Bad
// values are warned about and skipped: a node must boot.
func loadConfig(ctx context.Context, con *console, loader *coldplug.Loader) config.Node {
	n := config.Default()
	if err := config.ReadImage(&n, config.ImagePath); err != nil {
		con.Printf("gridnode: warning: %v; using the defaults instead", err)
		n = config.Default()
	}
	b, _ := os.ReadFile("/proc/cmdline")
	cmdline := string(b)
	// The command line may say how we booted; look before the medium.
	peek := n
	applyCmdline(&peek, cmdline, nil)
	if peek.Boot == "iso" || peek.Boot == "usb" {
		applyMedium(ctx, con, loader, &n)
	}
	applyCmdline(&n, cmdline, con)
	return n
}

// applyCmdline applies the gridnode.* keys one by one, skipping (and
// reporting) any that would make the configuration invalid.
func applyCmdline(n *config.Node, cmdline string, con *console) {
	for _, f := range strings.Fields(cmdline) {
		if !strings.HasPrefix(f, "gridnode.") {
			continue
		}
		try := *n
		if w := config.ApplyCmdline(&try, f); len(w) > 0 {
			if con != nil {
				for _, s := range w {
					con.Printf("gridnode: warning: %s (ignored)", s)
				}
			}
			continue
		}
		*n = try
	}
}

// applyMedium waits for the boot medium, mounts it and applies its gridnode.conf.
func applyMedium(ctx context.Context, con *console, loader *coldplug.Loader, n *config.Node) {
	deadline := time.Now().Add(mediumWait)
	nextLog := time.Now()
	var m fact.BootMedium
	for {
		var ok bool
		if m, ok = bootmedium.Find("/sys", "/dev"); ok {
			break
		}
		if time.Now().After(deadline) {
			con.Printf("gridnode: warning: no boot medium (file system labelled %s) after %s; block devices: %s; going on without its gridnode.conf",
				bootmedium.Label, mediumWait, strings.Join(bootmedium.Devices("/sys"), " "))
			return
		}
		if !time.Now().Before(nextLog) {
			con.Printf("gridnode: waiting for the boot medium (file system labelled %s), %s left; block devices: %s",
				bootmedium.Label, time.Until(deadline).Round(time.Second), strings.Join(bootmedium.Devices("/sys"), " "))
			nextLog = time.Now().Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
	con.Printf("gridnode: boot medium %s (%s on disk %s)", m.Device, m.FSType, m.Disk)
	if err := fact.Write(fact.NameBootMedium, m); err != nil {
		con.Printf("gridnode: warning: cannot publish the boot medium: %v", err)
	}
	if loader != nil {
		loader.Modprobe("fs-" + m.FSType) // may be built in; the mount says
	}
	os.MkdirAll(mediumDir, 0o755)
	if err := unix.Mount("/dev/"+m.Device, mediumDir, m.FSType, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		con.Printf("gridnode: warning: mounting the boot medium /dev/%s (%s): %v; its gridnode.conf is not read (is the %s module in the image?)", m.Device, m.FSType, err, m.FSType)
		return
	}
	path := filepath.Join(mediumDir, "gridnode.conf")
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		con.Printf("gridnode: the boot medium has no gridnode.conf")
		return
	}
	if err != nil {
		con.Printf("gridnode: warning: %v", err)
		return
	}
	applyKV(n, "gridnode.conf", string(b), con)
}

// applyKV applies a gridnode.conf, warning on the console about each line
// it skips: a node boots whatever the farmer's file says.
func applyKV(n *config.Node, file, text string, con *console) {
	config.ApplyKVSkipping(n, file, text, func(err error) {
		con.Printf("gridnode: warning: %v (line ignored)", err)
	})
}

// supervise runs the modules (and the debug shells) until ctx is done.
func supervise(ctx context.Context, con *console, cfg config.Node, self string) {
	mods, unknown := selectModules(cfg.Modules)
	if len(unknown) > 0 {
		con.Printf("gridnode: warning: unknown modules %s in gridnode.modules (known: %s)", strings.Join(unknown, ", "), moduleNames())
	}
	env := append(os.Environ(), "TERM=linux")
	var svcs []supervisor.Service
	for _, m := range mods {
		svcs = append(svcs, supervisor.Service{
			Name: m.name,
			Deps: m.deps,
			Argv: []string{self, "module", m.name},
			Env:  env,

			Grace:         m.grace,
			StopsChildren: m.stopsChildren,
		})
	}
	if cfg.Flavour == config.FlavourDebug {
		svcs = append(svcs, debugShells(con)...)
	}
	sup, err := supervisor.New(svcs, supervisor.Options{
		Facts:    fact.DefaultDir,
		Console:  con,
		LogDir:   filepath.Join(fact.DefaultDir, "log"),
		AllReady: func() { con.Printf("gridnode: ready") },
	})
	if err != nil {
		con.Printf("gridnode: %v; no module runs", err)
		return
	}
	con.Printf("gridnode: starting %s", strings.Join(sup.Order(), ", "))
	sup.Run(ctx)
}

// debugShells are the debug flavour's shells on the second virtual terminal
// and the second serial line, respawned when they exit.
func debugShells(con *console) []supervisor.Service {
	if _, err := os.Stat("/bin/sh"); err != nil {
		con.Printf("gridnode: warning: debug flavour without /bin/sh: no shells")
		return nil
	}
	var l []supervisor.Service
	for _, tty := range []string{"tty2", "ttyS1"} {
		// A serial port the machine lacks still has a device node; its
		// UART type is 0 ("unknown").
		if b, err := os.ReadFile("/sys/class/tty/" + tty + "/type"); err == nil && strings.TrimSpace(string(b)) == "0" {
			continue
		}
		if _, err := os.Stat("/dev/" + tty); err != nil {
			continue
		}
		term := "linux"
		if strings.HasPrefix(tty, "ttyS") {
			term = "vt100"
		}
		l = append(l, supervisor.Service{
			Name: "shell-" + tty,
			Argv: []string{"/bin/sh", "-l"},
			Env:  []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/", "TERM=" + term, "PS1=gridnode:\\w# "},
			TTY:  "/dev/" + tty,
		})
	}
	return l
}
