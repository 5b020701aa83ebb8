package cli

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/build/fat"
	"github.com/gridnode/gridnode/internal/need"
)

// fatImage writes a FAT file system holding gridnode.conf with conf (empty:
// as a farmer's editor leaves it when emptied) and another file.
func fatImage(t *testing.T, conf string) string {
	t.Helper()
	im, err := fat.New([]fat.File{{Path: "gridnode.conf", Data: []byte(conf)}, {Path: "EFI/BOOT/BOOTX64.EFI", Data: bytes.Repeat([]byte{7}, 5000)}},
		fat.Options{Label: "GRIDNODE", VolumeID: 1, Time: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "stick.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := im.WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
	f.Truncate(im.Size())
	return p
}

func run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := Run(args, nil, &out, &out)
	return code, out.String()
}

// An emptied gridnode.conf (no cluster left) neither panics `image show`
// nor `image set`: show prints nothing, set gives the file room and writes
// it, and the file system stays valid (fsck.vfat, mtype).
func TestImageEmptiedConf(t *testing.T) {
	p := fatImage(t, "")
	if code, out := run(t, "image", "show", p); code != 0 || out != "" {
		t.Fatalf("image show: %d %q; want nothing printed", code, out)
	}
	if code, out := run(t, "image", "set", p, "farm=42"); code != 0 || !strings.Contains(out, "farm=42") {
		t.Fatalf("image set: %d %q", code, out)
	}
	if out, err := exec.Command(need.Tool(t, "fsck.vfat"), "-n", p).CombinedOutput(); err != nil {
		t.Fatalf("fsck.vfat -n after image set: %v\n%s", err, out)
	}
	out, err := exec.Command(need.Tool(t, "mtype"), "-i", p, "::gridnode.conf").Output()
	if err != nil || !strings.HasPrefix(string(out), "farm=42\n") {
		t.Fatalf("mtype gridnode.conf: %q, %v", out, err)
	}
	if code, out := run(t, "image", "show", p); code != 0 || out != "farm=42\n" {
		t.Fatalf("image show after set: %d %q", code, out)
	}
}

// Images that claim what they do not hold: a gridnode.conf of 4 GiB, a
// volume of 2 TiB, a cluster chain that loops. image show and image set
// answer with an error or the bytes there are, never a panic, and never
// allocate what the image merely claims.
func TestImageHostileClaims(t *testing.T) {
	entry := func(t *testing.T, p string) int64 { // the offset of gridnode.conf's directory entry
		f, _ := os.Open(p)
		defer f.Close()
		found, err := fat.Lookup(f, 0, "gridnode.conf")
		if err != nil {
			t.Fatal(err)
		}
		return found.Entry
	}
	patch := func(t *testing.T, p string, off int64, b []byte) {
		f, _ := os.OpenFile(p, os.O_RDWR, 0)
		defer f.Close()
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	for _, c := range []struct {
		name, want string
		hostile    func(t *testing.T, p string)
	}{
		{"conf of 4 GiB", "claims 4294967295 bytes", func(t *testing.T, p string) { patch(t, p, entry(t, p)+28, le32(0xFFFFFFFF)) }},
		{"conf of 60 KiB in one looping cluster", "", func(t *testing.T, p string) {
			e := entry(t, p)
			patch(t, p, e+28, le32(60<<10))
			// The FAT16 entry of its first cluster points back at itself.
			b := make([]byte, 2)
			f, _ := os.Open(p)
			f.ReadAt(b, e+26)
			f.Close()
			patch(t, p, 512+int64(binary.LittleEndian.Uint16(b))*2, b) // reserved = 1 sector: the first FAT starts at 512
		}},
		{"volume of 2 TiB", "no gridnode.conf found", func(t *testing.T, p string) {
			patch(t, p, 19, []byte{0, 0})
			patch(t, p, 32, le32(0xFFFFFFFF))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := fatImage(t, "farm=1\n")
			c.hostile(t, p)
			before, _ := os.ReadFile(p)
			for _, args := range [][]string{{"image", "show", p}, {"image", "set", p, "farm=42"}} {
				var code int
				var out string
				alloc := allocated(func() { code, out = run(t, args...) })
				if c.want != "" && (code == 0 || !strings.Contains(out, c.want)) {
					t.Errorf("%s: %d %q; want an error with %q", args[1], code, out, c.want)
				}
				if alloc > 32<<20 {
					t.Errorf("%s allocated %d MiB for an image of %d MiB", args[1], alloc>>20, len(before)>>20)
				}
			}
			if after, _ := os.ReadFile(p); c.want != "" && !bytes.Equal(before, after) {
				t.Error("a refused image set changed the image")
			}
		})
	}
}

// allocated is how many bytes fn allocated.
func allocated(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}
