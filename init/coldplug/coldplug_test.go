package coldplug

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

const aliasFile = `# Aliases extracted from modules themselves.
alias virtio:d00000001v* virtio_net
alias virtio:d00000002v* virtio_blk
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias pci:v00008086d00007010sv*sd*bc*sc*i* ata_piix
alias pci:v*d*sv*sd*bc01sc01i* ata_generic
alias fs-vfat vfat
alias fs-iso9660 isofs
alias acpi*:PNP0501:* 8250_pnp
`

// fakeTree writes a modules folder and a sysfs with one PCI device.
func fakeTree(t *testing.T) (modules, sys string) {
	dir := t.TempDir()
	modules = filepath.Join(dir, "lib/modules/6.1.0-test")
	os.MkdirAll(modules, 0o755)
	os.WriteFile(filepath.Join(modules, "modules.alias"), []byte(aliasFile), 0o644)
	os.WriteFile(filepath.Join(modules, "modules.dep"), []byte(
		"kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko\nkernel/drivers/virtio/virtio_pci.ko:\nkernel/drivers/block/virtio_blk.ko:\nkernel/fs/isofs/isofs.ko:\nkernel/net/core/failover.ko:\n"), 0o644)
	os.WriteFile(filepath.Join(modules, "modules.softdep"), []byte("softdep virtio_net pre: failover\n"), 0o644)
	sys = filepath.Join(dir, "sys")
	dev := filepath.Join(sys, "devices/pci0000:00/0000:00:03.0")
	os.MkdirAll(dev, 0o755)
	os.WriteFile(filepath.Join(dev, "modalias"), []byte("pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00\n"), 0o644)
	return modules, sys
}

func TestColdplugLoopsUntilNoNewModules(t *testing.T) {
	modules, sys := fakeTree(t)
	l, err := New(modules)
	if err != nil {
		t.Fatal(err)
	}
	l.Sys = sys
	l.NoPublish = true
	var lines, loads []string
	// Loading the bus driver makes two virtio devices appear, as the kernel does.
	var mu sync.Mutex
	l.Logf = func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, strings.TrimSpace(sprintf(f, a...)))
	}
	l.Kernel = kernelFunc(func(path string) error {
		mu.Lock()
		defer mu.Unlock()
		m := moduleName(path)
		loads = append(loads, m)
		if m == "virtio_pci" {
			for i, id := range []string{"00000001", "00000002"} {
				d := filepath.Join(sys, "devices/pci0000:00/0000:00:03.0", "virtio"+string(rune('0'+i)))
				os.MkdirAll(d, 0o755)
				os.WriteFile(filepath.Join(d, "modalias"), []byte("virtio:d"+id+"v00001AF4\n"), 0o644)
			}
		}
		return nil
	})
	f := l.Coldplug()
	if want := []string{"virtio_blk", "virtio_net", "virtio_pci"}; !reflect.DeepEqual(f.Loaded, want) {
		t.Errorf("loaded %v, want %v", f.Loaded, want)
	}
	pos := map[string]int{}
	for i, m := range loads {
		pos[m] = i
	}
	if len(loads) != 4 || pos["virtio_pci"] != 0 || pos["failover"] > pos["virtio_net"] {
		t.Errorf("loads %v: want virtio_pci first (the bus), then failover before virtio_net (a softdep pre)", loads)
	}
	if f.Modalias["virtio_net"] != "virtio:d00000001v00001AF4" {
		t.Errorf("modalias: %v", f.Modalias)
	}
	want := "coldplug: loaded virtio_net (virtio:d00000001v00001AF4)"
	found := false
	for _, l := range lines {
		found = found || l == want
	}
	if !found {
		t.Errorf("no line %q in %q", want, lines)
	}
	// A second pass loads nothing again.
	loads = nil
	l.Coldplug()
	if len(loads) != 0 {
		t.Errorf("second coldplug loaded %v", loads)
	}
}

func TestResolve(t *testing.T) {
	modules, _ := fakeTree(t)
	l, err := New(modules)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Resolve("fs-iso9660"); !reflect.DeepEqual(got, []string{"isofs"}) {
		t.Errorf("alias: %v", got)
	}
	if got := l.Resolve("virtio-net"); !reflect.DeepEqual(got, []string{"virtio_net"}) {
		t.Errorf("module name: %v", got)
	}
}

func TestParseUevent(t *testing.T) {
	msg := []byte("add@/devices/pci0000:00/0000:00:03.0/virtio0\x00ACTION=add\x00DEVPATH=/devices/pci0000:00/0000:00:03.0/virtio0\x00SUBSYSTEM=virtio\x00MODALIAS=virtio:d00000001v00001AF4\x00SEQNUM=1234\x00")
	ev, ok := ParseUevent(msg)
	if !ok || ev.Action != "add" || ev.Env["MODALIAS"] != "virtio:d00000001v00001AF4" || ev.Devpath != "/devices/pci0000:00/0000:00:03.0/virtio0" {
		t.Errorf("got %+v %v", ev, ok)
	}
	if _, ok := ParseUevent([]byte("libudev\x00\xfe\xed")); ok {
		t.Error("udev message parsed as a kernel one")
	}
}

func sprintf(f string, a ...any) string { return fmt.Sprintf(f, a...) }
