package mediaconf_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/build/iso"
	"github.com/gridnode/gridnode/build/mediaconf"
	"github.com/gridnode/gridnode/build/usb"
	"github.com/gridnode/gridnode/internal/boottest"
	"github.com/gridnode/gridnode/node/config"
)

func TestPadStrip(t *testing.T) {
	for _, text := range []string{"", "farm=1\n", "farm=1", "# comment\nfarm=1\n\n"} {
		p, err := mediaconf.Pad([]byte(text), mediaconf.Reserved)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != mediaconf.Reserved || p[len(p)-1] != '\n' {
			t.Fatalf("Pad(%q): %d bytes, want %d ending in a newline", text, len(p), mediaconf.Reserved)
		}
		n := config.Default()
		if err := config.ApplyKV(&n, "gridnode.conf", string(p)); err != nil {
			t.Fatalf("padded text does not parse: %v", err)
		}
		if got, want := string(mediaconf.Strip(p)), strings.TrimRight(text, "\n"); strings.TrimRight(got, "\n") != want {
			t.Errorf("Strip(Pad(%q)) = %q", text, got)
		}
	}
	if _, err := mediaconf.Pad(bytes.Repeat([]byte("x"), 5000), mediaconf.Reserved); err == nil {
		t.Error("Pad accepted text larger than the reserved size")
	}
}

func TestEdit(t *testing.T) {
	got, err := mediaconf.Edit([]byte("# farm=7\nfarm=1\nregistrar=dev\ngridnode.farm=3\n"), []string{"farm=42", "gridnode.net=dhcp"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "# farm=7\nfarm=42\nregistrar=dev\nnet=dhcp\n"; string(got) != want {
		t.Errorf("Edit = %q, want %q", got, want)
	}
	got, err = mediaconf.Edit([]byte("farm=1\n#net.iface=\n#location=\n"), []string{"net.iface=eth1"})
	if want := "farm=1\nnet.iface=eth1\n#location=\n"; err != nil || string(got) != want {
		t.Errorf("Edit of a placeholder = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"farm=x", "nokey=1", "novalue"} {
		if _, err := mediaconf.Edit(nil, []string{bad}); err == nil {
			t.Errorf("Edit accepted %q", bad)
		}
	}
}

// TestSetInImages sets farm=42 in an ISO and a USB image, reads it back from
// every copy and checks that no other byte changed.
func TestSetInImages(t *testing.T) {
	in := boottest.Input(t)
	for name, write := range map[string]func(string) error{
		"iso": func(p string) error { return iso.Write(in, p) },
		"usb": func(p string) error { return usb.Write(in, p) },
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "image")
			if err := write(p); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(p)
			f, _ := os.Open(p)
			copies, err := mediaconf.Find(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			wantCopies := map[string]int{"iso": 2, "usb": 1}[name]
			if len(copies) != wantCopies {
				t.Fatalf("found %d copies of gridnode.conf (%+v), want %d", len(copies), copies, wantCopies)
			}
			if _, err := mediaconf.Set(p, []string{"farm=42"}); err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadFile(p)
			if len(after) != len(before) {
				t.Fatalf("size changed: %d → %d", len(before), len(after))
			}
			// Only bytes inside the copies may differ.
			in := func(off int64) bool {
				for _, c := range copies {
					if off >= c.Off && off < c.Off+c.Size {
						return true
					}
				}
				return false
			}
			changed := 0
			for i := range before {
				if before[i] != after[i] {
					changed++
					if !in(int64(i)) {
						t.Fatalf("byte %d outside gridnode.conf changed", i)
					}
				}
			}
			if changed == 0 {
				t.Fatal("nothing changed")
			}
			f, _ = os.Open(p)
			defer f.Close()
			for _, c := range copies {
				b := make([]byte, c.Size)
				f.ReadAt(b, c.Off)
				n := config.Default()
				if err := config.ApplyKV(&n, c.Where, string(b)); err != nil {
					t.Fatal(err)
				}
				if n.Farm != 42 {
					t.Errorf("%s: farm = %d, want 42", c.Where, n.Farm)
				}
			}
			big := "hostname=" + strings.Repeat("x", 5000)
			if _, err := mediaconf.Set(p, []string{big}); err == nil {
				t.Error("Set accepted a value larger than the reserved space")
			}
			again, _ := os.ReadFile(p)
			if !bytes.Equal(again, after) {
				t.Error("a failed Set changed the image")
			}
		})
	}
}

func TestFindOnOtherFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "junk")
	junk := make([]byte, 1<<20)
	for i := range junk {
		junk[i] = byte(i*31 + i>>8)
	}
	junk[510], junk[511] = 0x55, 0xAA
	os.WriteFile(p, junk, 0o644)
	if _, err := mediaconf.Set(p, []string{"farm=1"}); err == nil {
		t.Error("Set found gridnode.conf in junk")
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(after, junk) {
		t.Error("Set changed a file that is not an image")
	}
}
