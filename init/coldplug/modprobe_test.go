package coldplug

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// kernelFunc is a fake kernel: nothing loaded at first, and Insert is the
// function.
type kernelFunc func(path string) error

func (kernelFunc) Loaded() ([]string, error)     { return nil, nil }
func (k kernelFunc) Insert(path, _ string) error { return k(path) }

// fakeKernel records the order of insertions and fails the modules in fail.
type fakeKernel struct {
	mu     sync.Mutex
	dir    string
	fail   map[string]error
	loaded []string
	pre    []string // loaded before us
}

func (k *fakeKernel) Loaded() ([]string, error) { return k.pre, nil }

func (k *fakeKernel) Insert(path, _ string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !strings.HasPrefix(path, k.dir+"/") {
		return errors.New("path outside the modules folder: " + path)
	}
	m := moduleName(path)
	if err := k.fail[m]; err != nil {
		return err
	}
	for _, x := range k.loaded {
		if x == m {
			return errors.New("inserted twice: " + m)
		}
	}
	k.loaded = append(k.loaded, m)
	return nil
}

// before says whether a was inserted before b (both inserted).
func (k *fakeKernel) before(a, b string) bool {
	ia, ib := -1, -1
	for i, m := range k.loaded {
		switch m {
		case a:
			ia = i
		case b:
			ib = i
		}
	}
	return ia >= 0 && ib >= 0 && ia < ib
}

// storageTree is Debian 6.1's path to a SCSI disk and an NVMe drive, as the
// builder writes it: sd_mod and nvme need crc_t10dif, whose soft dependency
// "crct10dif" two modules provide; crct10dif_pclmul is refused with ENODEV
// by a CPU without PCLMULQDQ (QEMU's qemu64, Nehalem, kvm64).
func storageTree(t *testing.T) (modules, sys string) {
	dir := t.TempDir()
	modules = filepath.Join(dir, "lib/modules/6.1.0-test")
	os.MkdirAll(modules, 0o755)
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(modules, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("modules.alias", `alias scsi:t-0x00* sd_mod
alias pci:v*d*sv*sd*bc01sc08i02* nvme
alias crct10dif crct10dif_generic
alias crypto-crct10dif crct10dif_generic
alias crct10dif crct10dif_pclmul
alias crypto-crct10dif crct10dif_pclmul
alias cpu:type:x86,ven*fam*mod*:feature:*0081* crct10dif_pclmul
alias virtio:d00000002v* virtio_blk
`)
	write("modules.dep", `kernel/drivers/scsi/sd_mod.ko: kernel/block/t10-pi.ko kernel/lib/crc-t10dif.ko kernel/crypto/crct10dif_common.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/nvme/host/nvme.ko: kernel/drivers/nvme/host/nvme-core.ko kernel/block/t10-pi.ko kernel/lib/crc-t10dif.ko kernel/crypto/crct10dif_common.ko
kernel/drivers/nvme/host/nvme-core.ko: kernel/block/t10-pi.ko kernel/lib/crc-t10dif.ko kernel/crypto/crct10dif_common.ko
kernel/block/t10-pi.ko: kernel/lib/crc-t10dif.ko kernel/crypto/crct10dif_common.ko
kernel/lib/crc-t10dif.ko: kernel/crypto/crct10dif_common.ko
kernel/crypto/crct10dif_common.ko:
kernel/crypto/crct10dif_generic.ko: kernel/crypto/crct10dif_common.ko
kernel/arch/x86/crypto/crct10dif-pclmul.ko: kernel/crypto/crct10dif_common.ko
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/block/virtio_blk.ko:
`)
	write("modules.softdep", "softdep crc_t10dif pre: crct10dif\n")
	sys = filepath.Join(dir, "sys")
	for dev, alias := range map[string]string{
		"devices/pci0000:00/0000:00:04.0":                           "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02",
		"devices/pci0000:00/0000:00:05.0/host0/target0:0:0/0:0:0:0": "scsi:t-0x00",
		"devices/pci0000:00/0000:00:03.0/virtio0":                   "virtio:d00000002v00001AF4",
	} {
		os.MkdirAll(filepath.Join(sys, dev), 0o755)
		os.WriteFile(filepath.Join(sys, dev, "modalias"), []byte(alias+"\n"), 0o644)
	}
	return modules, sys
}

// The CPU refuses crct10dif_pclmul (ENODEV): the generic provider of the
// same soft dependency loads before crc_t10dif, and every module above
// crc_t10dif (t10_pi, sd_mod, nvme_core, nvme) loads.
func TestLoaderCPUSpecificSoftdepFailsOthersLoad(t *testing.T) {
	modules, sys := storageTree(t)
	l, err := New(modules)
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKernel{dir: modules, fail: map[string]error{"crct10dif_pclmul": unix.ENODEV}}
	l.Kernel, l.Sys, l.NoPublish = k, sys, true
	var lines []string
	var mu sync.Mutex
	l.Logf = func(f string, a ...any) { mu.Lock(); lines = append(lines, sprintf(f, a...)); mu.Unlock() }

	f := l.Coldplug()
	if want := []string{"nvme", "sd_mod", "virtio_blk"}; !reflect.DeepEqual(f.Loaded, want) {
		t.Errorf("loaded %v, want %v; console:\n%s", f.Loaded, want, strings.Join(lines, "\n"))
	}
	if len(f.Failed) != 0 {
		t.Errorf("failed: %v", f.Failed)
	}
	for _, p := range [][2]string{
		{"crct10dif_common", "crct10dif_generic"}, {"crct10dif_generic", "crc_t10dif"},
		{"crc_t10dif", "t10_pi"}, {"t10_pi", "sd_mod"}, {"scsi_common", "scsi_mod"},
		{"scsi_mod", "sd_mod"}, {"t10_pi", "nvme_core"}, {"nvme_core", "nvme"},
	} {
		if !k.before(p[0], p[1]) {
			t.Errorf("%s not loaded before %s: %v", p[0], p[1], k.loaded)
		}
	}
	// What the kernel asks for through /proc/sys/kernel/modprobe: the alias
	// is served by the generic module.
	if err := l.Modprobe("crypto-crct10dif"); err != nil {
		t.Errorf("modprobe crypto-crct10dif: %v", err)
	}
}

// A hard dependency that fails fails the modules above it, saying which
// dependency and why, and nothing else.
func TestLoaderHardDependencyFailsOnlyItsDependants(t *testing.T) {
	modules, sys := storageTree(t)
	l, err := New(modules)
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKernel{dir: modules, fail: map[string]error{"scsi_common": unix.ENODEV}}
	l.Kernel, l.Sys, l.NoPublish = k, sys, true
	f := l.Coldplug()
	if want := []string{"nvme", "virtio_blk"}; !reflect.DeepEqual(f.Loaded, want) {
		t.Errorf("loaded %v, want %v", f.Loaded, want)
	}
	want := "needs scsi_mod: needs scsi_common: no such device"
	if f.Failed["sd_mod"] != want {
		t.Errorf("sd_mod failed with %q, want %q", f.Failed["sd_mod"], want)
	}
	// Every provider of an alias failing is an error.
	k.fail["crct10dif_generic"] = unix.ENODEV
	l2, _ := New(modules)
	l2.Kernel, l2.NoPublish = k, true
	if err := l2.Modprobe("crct10dif"); err == nil {
		t.Error("modprobe crct10dif: no error although no provider loaded")
	}
}

// Modules the kernel has already are not inserted again.
func TestLoaderSkipsLoaded(t *testing.T) {
	modules, _ := storageTree(t)
	l, err := New(modules)
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKernel{dir: modules, pre: []string{"scsi_mod", "scsi_common"}}
	l.Kernel, l.NoPublish = k, true
	if err := l.Load("sd_mod"); err != nil {
		t.Fatal(err)
	}
	for _, m := range k.loaded {
		if m == "scsi_mod" || m == "scsi_common" {
			t.Errorf("inserted %s, which was loaded: %v", m, k.loaded)
		}
	}
}

// While the random pool is not ready the console says so, with what would
// fill it, and says when it is ready.
func TestPoolWatchSaysWhatWaits(t *testing.T) {
	ready := make(chan struct{})
	lines := make(chan string, 10)
	p := pool{
		Ready: func() bool { return false },
		Wait:  func() { <-ready },
		RNG:   func() string { return "" },
		Grace: time.Millisecond, Every: time.Millisecond,
	}
	go p.watch(func(f string, a ...any) { lines <- fmt.Sprintf(f, a...) })
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no console line within 10 s")
			return ""
		}
	}
	if l := next(); !strings.Contains(l, "random pool is not ready") || !strings.Contains(l, "identity key") || !strings.Contains(l, "no hardware RNG found") {
		t.Errorf("first line %q", l)
	}
	if l := next(); !strings.HasPrefix(l, "random: still waiting") {
		t.Errorf("reminder %q", l)
	}
	close(ready)
	for l := next(); !strings.Contains(l, "is ready, after"); l = next() {
		if !strings.HasPrefix(l, "random: still waiting") {
			t.Errorf("unexpected line %q", l)
		}
	}
}

// A pool that is ready, or gets ready within the grace, says nothing.
func TestPoolWatchQuietWhenReady(t *testing.T) {
	var said []string
	pool{Ready: func() bool { return true }}.watch(func(f string, a ...any) { said = append(said, f) })
	pool{Ready: func() bool { return false }, Wait: func() {}, Grace: time.Hour}.watch(func(f string, a ...any) { said = append(said, f) })
	if len(said) != 0 {
		t.Errorf("said %q", said)
	}
}

// A PCI device whose driver cannot load is named on the console with its
// ids and its name in pci.ids.
func TestUnclaimedDeviceIsNamed(t *testing.T) {
	modules, sys := storageTree(t)
	nvme := filepath.Join(sys, "devices/pci0000:00/0000:00:04.0")
	os.WriteFile(filepath.Join(nvme, "vendor"), []byte("0x1b36\n"), 0o644)
	os.WriteFile(filepath.Join(nvme, "device"), []byte("0x0010\n"), 0o644)
	ids := filepath.Join(filepath.Dir(sys), "usr/share/misc/pci.ids")
	os.MkdirAll(filepath.Dir(ids), 0o755)
	os.WriteFile(ids, []byte("1b36  Red Hat, Inc.\n\t0010  QEMU NVM Express Controller\n"), 0o644)
	l, err := New(modules)
	if err != nil {
		t.Fatal(err)
	}
	l.Kernel, l.Sys, l.NoPublish = &fakeKernel{dir: modules, fail: map[string]error{"nvme": unix.ENODEV}}, sys, true
	var lines []string
	var mu sync.Mutex
	l.Logf = func(f string, a ...any) { mu.Lock(); lines = append(lines, fmt.Sprintf(f, a...)); mu.Unlock() }
	l.Coldplug()
	want := "coldplug: [1b36:0010] Red Hat, Inc. QEMU NVM Express Controller at 0000:00:04.0 is left without a driver: nvme failed: no such device"
	if !slices.Contains(lines, want) {
		t.Errorf("no line %q in:\n%s", want, strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if strings.Contains(l, "without a driver") && !strings.Contains(l, "0000:00:04.0") {
			t.Errorf("a device that has its driver named: %q", l)
		}
	}
}

func TestModuleParamsFromTheCommandLine(t *testing.T) {
	got := ModuleParams(`console=ttyS0 watchdog.stop_on_reboot=0 gridnode.farm=7 i6300esb.heartbeat=60 i6300esb.nowayout usb-storage.quirks=0781:5580:u quiet`)
	want := map[string]string{
		"watchdog":    "stop_on_reboot=0",
		"i6300esb":    "heartbeat=60 nowayout",
		"usb_storage": "quirks=0781:5580:u",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ModuleParams = %v, want %v", got, want)
	}
}

// Every boot loads the watchdog core with stop_on_reboot=0, before what
// the command line says (which comes later, and wins).
func TestDefaultParams(t *testing.T) {
	got := ModuleParams(DefaultParams + " " + "watchdog.stop_on_reboot=1 quiet")
	if got["watchdog"] != "stop_on_reboot=0 stop_on_reboot=1" {
		t.Errorf("watchdog parameters %q", got["watchdog"])
	}
	if got := ModuleParams(DefaultParams + " quiet"); got["watchdog"] != "stop_on_reboot=0" {
		t.Errorf("watchdog parameters without a command line's: %q", got["watchdog"])
	}
}
