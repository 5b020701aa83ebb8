package netboot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestARPLookup(t *testing.T) {
	table := filepath.Join(t.TempDir(), "arp")
	os.WriteFile(table, []byte(`IP address       HW type     Flags       HW address            Mask     Device
192.168.77.100   0x1         0x2         52:54:00:77:00:64     *        br0
192.168.77.101   0x1         0x0         00:00:00:00:00:00     *        br0
`), 0o644)
	for ip, want := range map[string]string{"192.168.77.100": "52:54:00:77:00:64", "192.168.77.101": "", "10.0.0.1": ""} {
		if got := arpLookup(table, ip); got != want {
			t.Errorf("arpLookup(%s) = %q, want %q", ip, got, want)
		}
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"ipxe.efi": "ipxe.efi", "/ipxe.efi": "ipxe.efi", "a/../b": "b", `\pxe\x`: "pxe/x",
		"../etc/passwd": "", "/../x": "", "..": "", "": "", "/": "",
	} {
		if got := cleanName(in); got != want {
			t.Errorf("cleanName(%q) = %q, want %q", in, got, want)
		}
	}
}
