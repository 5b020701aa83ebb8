package pciids

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

const ids = `# comment
1002  Advanced Micro Devices, Inc. [AMD/ATI]
	5159  Rage 128 PF/PRO AGP 4x TMDS
	5046  Rage 128 PRO AGP 4x TMDS
		1002 0004  Rage Fury Pro
1af4  Red Hat, Inc.
	1000  Virtio network device
1b36  Red Hat, Inc.
	0010  QEMU NVM Express Controller
C 01  Mass storage controller
	08  Non-Volatile memory controller
`

func TestLookup(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/share/misc"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "usr/share/misc/pci.ids"), []byte(ids), 0o644)
	got := Lookup(root, ID{"1B36", "0010"}, ID{"1002", "5046"}, ID{"1002", "0004"}, ID{"1af4", "ffff"}, ID{"dead", "beef"})
	want := map[ID]Name{
		{"1b36", "0010"}: {"Red Hat, Inc.", "QEMU NVM Express Controller"},
		{"1002", "5046"}: {"Advanced Micro Devices, Inc. [AMD/ATI]", "Rage 128 PRO AGP 4x TMDS"},
		{"1002", "0004"}: {"Advanced Micro Devices, Inc. [AMD/ATI]", ""}, // a subsystem line is no device
		{"1af4", "ffff"}: {"Red Hat, Inc.", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Lookup = %v\nwant %v", got, want)
	}
	if got := Lookup(t.TempDir(), ID{"1b36", "0010"}); len(got) != 0 {
		t.Errorf("without pci.ids: %v", got)
	}
}
