// Command init is the node program. As PID 1 it mounts the basic file
// systems, loads drivers for the machine's devices, reads the configuration
// and supervises the modules; the same binary runs each module
// (`/init module NAME`), stands in for modprobe when the kernel asks for a
// module, and asks PID 1 to power off or reboot.
//
// Facts PID 1 publishes under /run/gridnode:
//
//	config.json      the merged config.Node (image file, boot medium, command line)
//	coldplug.json    kernel modules loaded for the devices (package coldplug)
//	bootmedium.json  the medium booted from, on iso and usb boots (package bootmedium)
//	modules.json     the state of every module (package supervisor)
//	log/NAME.log     the last 200 lines of each module's output
//
// Signals to PID 1: SIGTERM, SIGUSR1, SIGUSR2, SIGPWR and the power button
// power off; SIGINT (Ctrl-Alt-Del) reboots; SIGRTMIN+6 (upgrade/kexec.Request,
// from the upgrade module) jumps into the kernel loaded for kexec, if one is.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gridnode/gridnode/init/coldplug"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/upgrade/kexec"
)

// version is set by the image builder: -ldflags "-X main.version=...".
var version = "dev"

const usage = `gridnode node program %s

This is /init, PID 1 of a gridnode image. Commands:
  init version             print the version
  init module NAME         run one module (PID 1 does this for each module)
  init poweroff | reboot   ask PID 1 to stop every module and power off / reboot
  init kexec               ask PID 1 to stop every module and jump into the kernel loaded for kexec
  init halt                the same as poweroff
  init modprobe NAME...    load kernel modules (or aliases) with their dependencies
Modules: %s
`

func main() {
	if os.Getpid() == 1 {
		pid1() // never returns
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, version, moduleNames())
		return 2
	}
	switch args[0] {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version)
		return 0
	case "module":
		if len(args) != 2 {
			fmt.Fprintf(stderr, "usage: init module NAME (one of %s)\n", moduleNames())
			return 2
		}
		return runModule(args[1], stderr)
	case "poweroff", "halt":
		return signalInit(syscall.SIGUSR2, stderr)
	case "reboot":
		return signalInit(syscall.SIGINT, stderr)
	case "kexec":
		return signalInit(kexec.Request, stderr)
	case "modprobe", "-q", "--":
		// The kernel runs /proc/sys/kernel/modprobe as "-q -- NAME"; PID 1
		// points it at this binary, so file systems and other modules the
		// kernel requests on its own (fs-vfat, nls_cp437) get loaded.
		return modprobe(args, stderr)
	case "help", "-h", "--help":
		fmt.Fprintf(stdout, usage, version, moduleNames())
		return 0
	}
	fmt.Fprintf(stderr, "init: unknown command %q\n"+usage, args[0], version, moduleNames())
	return 2
}

func modprobe(args []string, stderr io.Writer) int {
	quiet := false
	var names []string
	for i, a := range args {
		switch {
		case a == "-q":
			quiet = true
		case i == 0 && a == "modprobe", strings.HasPrefix(a, "-"):
		default:
			names = append(names, a)
		}
	}
	dir, err := coldplug.ModulesDir()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	l, err := coldplug.New(dir)
	if err != nil {
		if !quiet {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	rc := 0
	for _, n := range names {
		if err := l.Modprobe(n); err != nil {
			if !quiet {
				fmt.Fprintln(stderr, err)
			}
			rc = 1
		}
	}
	return rc
}

// signalInit asks PID 1 to shut down. It refuses unless PID 1 is this very
// program, so that running it on a workstation does not power that off.
func signalInit(sig syscall.Signal, stderr io.Writer) int {
	if err := kexec.SignalInit(sig); err != nil {
		fmt.Fprintf(stderr, "init: %v\n", err)
		return 1
	}
	return 0
}

// runModule runs one module in this process, as the supervisor's child.
func runModule(name string, stderr io.Writer) int {
	m, ok := findModule(name)
	if !ok {
		fmt.Fprintf(stderr, "init: no module %q; modules: %s\n", name, moduleNames())
		return 2
	}
	// The console tags each line with the module's name and the time is
	// the console's business: keep lines short.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	cfg := config.Default()
	if err := fact.Read(fact.NameConfig, &cfg); err != nil {
		log.Warn("no configuration fact; using defaults", "err", err)
		cfg = config.Default()
	}
	// Every module is ready once it has published its fact: this is the one
	// place that says so to the supervisor (on the readiness pipe it gave
	// this process).
	if err := fact.ReadyOnPublish(m.name); err != nil {
		log.Error("the supervisor will not learn that this module is ready", "err", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := safeRun(ctx, m, cfg, log)
	if err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		log.Error("module failed", "err", err)
		return 1
	}
	return 0
}

func safeRun(ctx context.Context, m module, cfg config.Node, log *slog.Logger) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return m.run(ctx, cfg, log)
}
