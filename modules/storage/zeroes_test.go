package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"
)

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

// The ext4 writer's inode tables and journal are handed to the disk as
// zeroing requests: formatting a 2 GiB disk writes well under its 64 MiB
// journal and 8 MiB of inode tables.
func TestFormatWritesNoRunsOfZeroes(t *testing.T) {
	img := blank(t, filepath.Join(t.TempDir(), "disk"), 2048*mib)
	off, _, err := Format(img)
	if err != nil {
		t.Fatal(err)
	}
	if n := allocated(t, img); n > 4*mib {
		t.Errorf("formatting wrote %d KiB; want under 4 MiB (the journal and inode tables are zeroed by the disk, not written)", n>>10)
	}
	run(t, "e2fsck", "-fn", img+"?offset="+strconv.FormatInt(off, 10))
}

// Formatting a disk full of old data through zeroAware leaves every block
// as the plain writes do: zero where the ext4 writer writes zeroes (inode
// tables, the journal), old data where it writes nothing. Block by block,
// the two images are zero in the same places.
func TestFormatZeroesWhatPlainWritesZero(t *testing.T) {
	junk := bytes.Repeat([]byte{0xA5}, 512*mib)
	images := map[string]string{}
	for name, through := range map[string]func(backend.Storage) backend.Storage{
		"plain":     func(s backend.Storage) backend.Storage { return s },
		"zeroAware": func(s backend.Storage) backend.Storage { return zeroAware{s} },
	} {
		img := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(img, junk, 0o644); err != nil {
			t.Fatal(err)
		}
		off, _, err := format(img, through)
		if err != nil {
			t.Fatal(err)
		}
		run(t, "e2fsck", "-fn", img+"?offset="+strconv.FormatInt(off, 10))
		images[name] = img
	}
	a, err := os.ReadFile(images["plain"])
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(images["zeroAware"])
	if err != nil {
		t.Fatal(err)
	}
	const blk = 1024 // the smallest ext4 block
	zeroed := 0
	for i := 0; i < len(a); i += blk {
		za, zb := allZero(a[i:i+blk]), allZero(b[i:i+blk])
		if za != zb {
			t.Fatalf("block at byte %d: zero %t written plainly, %t through zeroAware", i, za, zb)
		}
		if za {
			zeroed++
		}
	}
	if zeroed*blk < 8*mib {
		t.Errorf("only %d KiB of the old data were zeroed; the journal alone is larger", zeroed*blk>>10)
	}
}

func TestZeroWriterKeepsRaggedEnds(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, bytes.Repeat([]byte{0xFF}, 1*mib), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := file.OpenFromPath(p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w, err := zeroAware{st}.Writable()
	if err != nil {
		t.Fatal(err)
	}
	// 1000 bytes in, 700 KiB + 5 bytes long: both ends off a page.
	const at, n = 1000, 700<<10 + 5
	if _, err := w.WriteAt(make([]byte, n), at); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	for i, b := range got {
		inside := i >= at && i < at+n
		if inside && b != 0 || !inside && b != 0xFF {
			t.Fatalf("byte %d = %#x after zeroing [%d, %d)", i, b, at, at+n)
		}
	}
	if a := allocated(t, p); a >= 1*mib {
		t.Errorf("%d bytes still allocated: the zeroed pages were written, not punched", a)
	}
}
