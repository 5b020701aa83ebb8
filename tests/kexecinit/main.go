// Command kexecinit is the init of tests/kexec_test.go's trial boots: PID 1
// of a tiny initramfs, in two stages told apart by the command line.
//
// Stage 1 (the running release) loads the watchdog driver (with
// watchdog.stop_on_reboot=0 from its command line: without it the watchdog
// core stops the timer before the kexec), arms the
// watchdog with upgrade/kexec.Arm, loads /kernel and /stage2.cpio with the
// trial command line (upgrade/kexec.Trial) and jumps into it, as PID 1 does
// after its ordered stop. Stage 2 (the release on trial) hangs: at once, or
// after it loaded the driver again (which stops the i6300esb timer, as the
// node's coldplug would) and re-armed it (rearm=1), as the trial's upgrade
// module must. Either way the watchdog must reset the machine, and QEMU
// boots stage 1 again.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gridnode/gridnode/upgrade/kexec"
)

func main() {
	say("kexecinit: starting")
	if err := run(); err != nil {
		say("kexecinit: error: %v", err)
	}
	// PID 1 must not exit, and a hang must be a hang: a select{} with no
	// other goroutine would be the runtime's deadlock error, PID 1's exit
	// and a kernel panic instead.
	for {
		time.Sleep(time.Hour)
	}
}

func say(format string, a ...any) {
	fmt.Fprintf(os.Stdout, format+"\n", a...)
}

func run() error {
	if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		return err
	}
	os.MkdirAll("/dev", 0o755)
	if err := unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, ""); err != nil {
		return err
	}
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	cmdline := strings.TrimSpace(string(b))
	has := func(f string) bool { return strings.Contains(" "+cmdline+" ", " "+f+" ") }
	if has("stage=2") {
		say("kexecinit: stage 2 (trial %s): cmdline: %s", value(cmdline, "gridnode.trial"), cmdline)
		if has("rearm=1") {
			if err := loadDriver(cmdline); err != nil {
				return err
			}
			t, err := kexec.Arm(kexec.Watchdog, 10*time.Second)
			if err != nil {
				return err
			}
			say("kexecinit: stage 2: driver loaded, watchdog re-armed (%s)", t)
		}
		say("kexecinit: stage 2: hanging")
		return nil
	}
	say("kexecinit: stage 1")
	if err := loadDriver(cmdline); err != nil {
		return err
	}
	t, err := kexec.Arm(kexec.Watchdog, 10*time.Second)
	if err != nil {
		return err
	}
	say("kexecinit: stage 1: watchdog armed (%s)", t)
	kernel, err := os.ReadFile("/kernel")
	if err != nil {
		return err
	}
	initrd, err := os.ReadFile("/stage2.cpio")
	if err != nil {
		return err
	}
	release := "console=ttyS0,115200 no_timer_check stage=2"
	if has("rearm=1") {
		release += " rearm=1"
	}
	// panic=3600: a panic must not pass for the watchdog's reset.
	trial := kexec.Trial{Version: "2", OpenTimeout: 5 * time.Second, Panic: 3600}.Cmdline(release, cmdline)
	if err := kexec.Load(&kexec.Image{Kernel: kernel, Initrd: initrd, Version: "2"}, trial); err != nil {
		return err
	}
	say("kexecinit: stage 1: kexec into the trial")
	return unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC)
}

// loadDriver loads the watchdog core and i6300esb from /lib with the
// parameters the command line gives them (MODULE.PARAM=VALUE, as modprobe
// reads /proc/cmdline): watchdog.stop_on_reboot=0 keeps the watchdog
// core from stopping the timer on the way into a kexec.
func loadDriver(cmdline string) error {
	for _, m := range []string{"watchdog", "i6300esb"} {
		f, err := os.Open("/lib/" + m + ".ko")
		if err != nil {
			return err
		}
		var params []string
		for _, fld := range strings.Fields(cmdline) {
			if p, ok := strings.CutPrefix(fld, m+"."); ok {
				params = append(params, p)
			}
		}
		err = unix.FinitModule(int(f.Fd()), strings.Join(params, " "), 0)
		f.Close()
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("loading %s: %w", m, err)
		}
	}
	return nil
}

func value(cmdline, key string) string {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}
