package layout

import (
	"bytes"
	"testing"
)

// FuzzMedium: whatever a boot medium holds where the node reads it (the
// ISO 9660 records, the UKI in a slot, loader.conf, a slot's entry,
// isolinux.cfg), the readers do not panic and read only what lies within
// the bounds they are given.
func FuzzMedium(f *testing.F) {
	a := Slot{Name: "a", Version: "1.0", Cmdline: "console=ttyS0"}
	e, _ := EntryText(a)
	ra, _ := IsolinuxSlot(a)
	rb, _ := IsolinuxSlot(Slot{Name: "b"})
	f.Add(LoaderConfText("a"))
	f.Add(e)
	f.Add(append(append(IsolinuxHeader("a"), ra...), rb...))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for _, p := range []string{IsolinuxCfg, LinuxRecord("a"), "GRIDNODE.CONF"} {
			FindRecord(r, p)
		}
		if u, err := ReadUKI(r, int64(len(b))); err == nil {
			for _, n := range []string{SectionOSRel, SectionCmdline, SectionInitrd, SectionLinux} {
				if x := u.Sections[n]; x.Off < 0 || x.Size < 0 || x.Off+x.Size > int64(len(b)) {
					t.Fatalf("section %s at %+v, outside the %d bytes given", n, x, len(b))
				}
			}
			u.Version(r)
			u.Cmdline(r)
			u.Aligned()
		}
		ParseLoaderConf(b)
		ParseEntry("a", b)
		cfg := make([]byte, IsolinuxSize)
		copy(cfg, b)
		ParseIsolinux(cfg)
		ParseIsolinux(b)
	})
}
