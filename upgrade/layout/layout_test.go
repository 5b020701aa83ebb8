package layout

import (
	"strings"
	"testing"
)

// What the builder writes, the node reads back: defaults, versions and
// command lines, every file at its fixed size.
func TestRoundTrip(t *testing.T) {
	a := Slot{Name: "a", Version: "1.0", Cmdline: "console=ttyS0 gridnode.boot=usb"}
	b := Slot{Name: "b"}
	for _, def := range Slots {
		if got, err := ParseLoaderConf(LoaderConfText(def)); err != nil || got != def {
			t.Errorf("loader.conf default %s read as %q, %v", def, got, err)
		}
		if n := len(LoaderConfText(def)); n != LoaderConfSize {
			t.Errorf("loader.conf is %d bytes, want %d", n, LoaderConfSize)
		}
	}
	e, err := EntryText(a)
	if err != nil || len(e) != EntrySize {
		t.Fatalf("EntryText: %d bytes, %v", len(e), err)
	}
	if got, err := ParseEntry("a", e); err != nil || got != a {
		t.Errorf("entry read as %+v, %v", got, err)
	}
	empty, _ := EntryText(b)
	if got, err := ParseEntry("b", empty); err != nil || got.Version != "" {
		t.Errorf("an empty slot's entry read as %+v, %v", got, err)
	}
	ra, _ := IsolinuxSlot(a)
	rb, _ := IsolinuxSlot(b)
	cfg := append(append(IsolinuxHeader("a"), ra...), rb...)
	def, slots, err := ParseIsolinux(cfg)
	if err != nil || def != "a" || slots["a"] != a || slots["b"].Version != "" {
		t.Fatalf("isolinux.cfg read as %s %+v, %v", def, slots, err)
	}
	if !strings.Contains(string(cfg), "kernel /boot/linux_a\n  initrd /boot/initrd_a\n") {
		t.Errorf("isolinux.cfg does not name slot a's records:\n%s", cfg)
	}
	if _, _, err := ParseIsolinux(cfg[:len(cfg)-1]); err == nil {
		t.Error("an isolinux.cfg of another size was read as slotted")
	}
	if _, err := EntryText(Slot{Name: "a", Version: "1", Cmdline: strings.Repeat("x", EntrySize)}); err == nil {
		t.Error("a command line longer than the entry was accepted")
	}
	swapped := append(append(IsolinuxHeader("b"), rb...), ra...)
	if _, _, err := ParseIsolinux(swapped); err == nil {
		t.Error("slot a's label in slot b's region was accepted")
	}
}

func TestWithBoot(t *testing.T) {
	if got := WithBoot("a gridnode.boot=iso b", "usb"); got != "a b gridnode.boot=usb" {
		t.Errorf("WithBoot = %q", got)
	}
}

func TestVersionID(t *testing.T) {
	for in, want := range map[string]string{
		"NAME=gridnode\nVERSION_ID=0.2.0\n":     "0.2.0",
		"ID=gridnode\nVERSION_ID=\"1.0-rc1\"\n": "1.0-rc1",
		"NAME=gridnode\n":                       "",
		"":                                      "",
	} {
		if got := VersionID([]byte(in)); got != want {
			t.Errorf("VersionID(%q) = %q, want %q", in, got, want)
		}
	}
}
