package tests

// A trial boot that hangs resets the machine (issue 13): the running release
// arms the hardware watchdog (QEMU's i6300esb) with upgrade/kexec.Arm and
// kexecs, with upgrade/kexec.Load and the trial command line, into a
// release whose init hangs. A kexec does not reset the device, so the timer
// that runs across the jump resets the machine and the firmware boots the
// first release again (here: QEMU's direct kernel boot, stage 1 anew).
// The running release loads the watchdog module with stop_on_reboot=0
// (from its command line, as modprobe would): without it the watchdog core
// stops the timer in the reboot notifier a kexec runs, and the first trial
// below hangs for ever (seen while writing this test).
//
// Two trials: one hangs before loading any watchdog driver; the other loads
// the driver first, which stops the i6300esb timer at probe (as the node's
// coldplug would), re-arms it as the trial's upgrade module must, then
// hangs.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/boottest"
	"github.com/gridnode/gridnode/qemu"
)

func TestTrialHangResets(t *testing.T) {
	skipBoot(t)
	boottest.NeedQEMU(t)
	kernel := boottest.NeedKernel(t)
	mods := map[string][]byte{}
	for _, m := range []string{"watchdog", "i6300esb"} {
		l, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(kernel)), "lib", "modules", "*", "kernel", "drivers", "watchdog", m+".ko"))
		if len(l) != 1 {
			t.Fatalf("module %s: found %v beside the test kernel %s", m, l, kernel)
		}
		b, err := os.ReadFile(l[0])
		if err != nil {
			t.Fatal(err)
		}
		mods["lib/"+m+".ko"] = b
	}
	const pkg = "github.com/gridnode/gridnode/tests/kexecinit"
	stage2, err := os.ReadFile(boottest.InitramfsFiles(t, pkg, mods))
	if err != nil {
		t.Fatal(err)
	}
	k, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"kernel": k, "stage2.cpio": stage2}
	for n, b := range mods {
		files[n] = b
	}
	stage1 := boottest.InitramfsFiles(t, pkg, files)

	for _, c := range []struct{ name, arg string }{{"hang", ""}, {"rearm-then-hang", "rearm=1"}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			vm := boot(t, qemu.Options{
				Boot:        qemu.KernelBoot(kernel, stage1, "console=ttyS0,115200 panic=-1 watchdog.stop_on_reboot=0 "+c.arg),
				ExtraArgs:   []string{"-device", "i6300esb"},
				NoNetwork:   true,
				AllowReboot: true,
			})
			expect(t, vm, `^kexecinit: stage 1: watchdog armed \(10s\)`, bootTimeout)
			expect(t, vm, `^kexecinit: stage 2 \(trial 2\): cmdline: .*gridnode\.trial=2 watchdog\.open_timeout=5 panic=3600 watchdog\.stop_on_reboot=0`, bootTimeout)
			if c.arg != "" {
				expect(t, vm, `^kexecinit: stage 2: driver loaded, watchdog re-armed`, time.Minute)
			}
			expect(t, vm, `^kexecinit: stage 2: hanging`, time.Minute)
			hung := time.Now()
			// i6300esb resets after its two stages of the timeout: about 20 s.
			expect(t, vm, `^kexecinit: stage 1$`, 3*time.Minute)
			tr := vm.Port(0).Transcript()
			after := tr[strings.LastIndex(tr, "kexecinit: stage 2: hanging"):]
			if strings.Contains(after, "Kernel panic") || strings.Contains(after, "fatal error") {
				t.Fatalf("the trial panicked instead of hanging; the reset proves nothing about the watchdog:\n%s", after)
			}
			t.Logf("the machine reset and booted the first release %.0fs after the trial hung", time.Since(hung).Seconds())
		})
	}
}
