package tests

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/gridnode/gridnode/qemu"
)

// The default image boots with a virtio NIC and a virtio disk, its PID 1
// loads their drivers by coldplug (nothing hard-coded), every module becomes
// ready, and the node powers off cleanly when its power button is pressed.
func TestBootDefaultImage(t *testing.T) {
	r := image(t, "node")
	// A USB controller from the start, and a stick that is plugged in only
	// after the node is ready: its driver must come from hotplug.
	stick := filepath.Join(t.TempDir(), "stick.img")
	if err := os.WriteFile(stick, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	vm := boot(t, qemu.Options{
		Boot:  kernelBoot(r, "gridnode.registrar=http://10.0.2.2:9"),
		Disks: []qemu.Disk{{Size: 1 << 30, Serial: "data0"}},
		ExtraArgs: []string{"-device", "qemu-xhci,id=xhci",
			"-drive", "if=none,id=stick,format=raw,file=" + stick},
	})
	expect(t, vm, `^gridnode: init `, bootTimeout)
	expect(t, vm, `^gridnode: ready$`, bootTimeout)

	// The guest's own report of what coldplug loaded, and why.
	console := vm.Console()
	for _, mod := range []string{"virtio_net", "virtio_blk"} {
		re := regexp.MustCompile(`(?m)^coldplug: loaded ` + mod + ` \(virtio:d0000000[12]v00001AF4\)`)
		if !re.MatchString(console) {
			t.Errorf("console does not show coldplug loading %s for its device", mod)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if regexp.MustCompile(`(?m)^coldplug: loaded usb_storage`).MatchString(console) {
		t.Fatal("usb_storage loaded before any USB stick was plugged in")
	}
	if _, err := vm.QMP(ctx, "device_add", map[string]string{"driver": "usb-storage", "bus": "xhci.0", "drive": "stick", "id": "stick0"}); err != nil {
		t.Fatalf("plugging the stick: %v", err)
	}
	expect(t, vm, `^hotplug: loaded usb_storage \(usb:`, 2*time.Minute)

	if err := vm.Shutdown(ctx); err != nil {
		t.Fatalf("power button: %v\n%s", err, vm.Console())
	}
	for _, line := range []string{"gridnode: powering off"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line)).MatchString(vm.Console()) {
			t.Errorf("console lacks %q", line)
		}
	}
}

// In the debug flavour a shell runs on the second serial line; a module
// killed from it is restarted by the supervisor.
func TestDebugShellKillRestarts(t *testing.T) {
	r := image(t, "debug")
	vm := boot(t, qemu.Options{
		Boot:         kernelBoot(r, "gridnode.registrar=http://10.0.2.2:9"),
		ExtraSerials: 1,
	})
	expect(t, vm, `^gridnode: ready$`, bootTimeout)

	sh := vm.Port(1)
	ctx := context.Background()
	send := func(cmd string) {
		t.Helper()
		if _, err := sh.Write([]byte(cmd + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	send("echo shell-$((40+2))")
	if _, err := sh.Expect(ctx, regexp.MustCompile(`shell-42`), time.Minute); err != nil {
		t.Fatal(err)
	}
	// Debian's busybox has no pkill: find the module's PID with ps.
	send("kill -KILL $(ps | awk '/[i]nit module hardware/{print $1}') && echo killed-$((1+1))")
	if _, err := sh.Expect(ctx, regexp.MustCompile(`killed-2`), time.Minute); err != nil {
		t.Fatal(err)
	}
	expect(t, vm, `^supervisor: hardware exited .*restart`, time.Minute)
	// The supervisor's own record shows the restart once the module is back.
	send(`until grep -q '"restarts": 1' /run/gridnode/modules.json; do sleep 0.2; done; grep -A3 '"hardware"' /run/gridnode/modules.json; echo restarted-ok`)
	if _, err := sh.Expect(ctx, regexp.MustCompile(`restarted-ok`), 2*time.Minute); err != nil {
		t.Fatal(err)
	}
}
