package fat

import (
	"bytes"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/testutil"
)

const fuzzSize = 3 << 20

// metadata is the start of a FAT image made by New: boot sector, FATs,
// root directory and the first clusters.
func metadata(f *testing.F, files []File) []byte {
	im, err := New(files, Options{Label: "GRIDNODE", VolumeID: 1, Time: time.Unix(1700000000, 0)})
	if err != nil {
		f.Fatal(err)
	}
	w := &testutil.Image{Size: im.Size()}
	if err := im.WriteTo(w, 0); err != nil {
		f.Fatal(err)
	}
	return w.Data[:min(len(w.Data), 40<<10)]
}

// FuzzLookup: whatever a FAT image's metadata says, Lookup does not panic,
// what it finds lies inside the image, and an emptied file that Allocate
// gives room is found again with that room.
func FuzzLookup(f *testing.F) {
	f.Add(metadata(f, []File{{Path: "gridnode.conf", Data: []byte("farm=1\n")}, {Path: "EFI/BOOT/BOOTX64.EFI", Data: make([]byte, 3000)}}))
	f.Add(metadata(f, []File{{Path: "gridnode.conf", Data: []byte{}}, {Path: "loader/entries/gridnode-a.conf", Data: []byte("version 1\n")}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := &testutil.Image{Data: data, Size: fuzzSize}
		for _, p := range []string{"gridnode.conf", "EFI/BOOT/BOOTX64.EFI", "loader/entries/gridnode-a.conf"} {
			found, err := Lookup(v, 0, p)
			if err != nil {
				continue
			}
			for _, x := range found.Clusters {
				if x.Off < 0 || x.Len <= 0 || x.Off+x.Len > fuzzSize {
					t.Fatalf("%s: extent %+v outside the image of %d bytes", p, x, fuzzSize)
				}
			}
			if len(found.Clusters) > 0 || p != "gridnode.conf" {
				continue
			}
			disk := &testutil.Image{Data: bytes.Clone(data), Size: fuzzSize}
			grown, err := Allocate(disk, found, 4096)
			if err != nil {
				continue
			}
			if err := WriteContent(disk, grown, bytes.Repeat([]byte("#"), 4096)); err != nil {
				t.Fatalf("writing into the room Allocate gave: %v", err)
			}
			again, err := Lookup(disk, 0, p)
			if err != nil || again.Size != 4096 || again.Capacity() < 4096 {
				t.Fatalf("after Allocate and WriteContent: %+v, %v; want 4096 bytes", again, err)
			}
		}
	})
}
