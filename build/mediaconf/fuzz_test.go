package mediaconf

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/gridnode/gridnode/build/fat"
	"github.com/gridnode/gridnode/internal/testutil"
)

// FuzzFind: whatever an image holds (MBR, GPT, FAT, ISO 9660), finding and
// reading its gridnode.conf does not panic, reads no more than MaxSize, and
// editing the text gives text the node reads.
func FuzzFind(f *testing.F) {
	im, err := fat.New([]fat.File{{Path: "gridnode.conf", Data: []byte("farm=1\nregistrar=dev\n")}}, fat.Options{Label: "GRIDNODE", Time: time.Unix(1700000000, 0)})
	if err != nil {
		f.Fatal(err)
	}
	w := &testutil.Image{Size: im.Size()}
	im.WriteTo(w, 0)
	f.Add(w.Data[:40<<10])
	mbr := make([]byte, 1024)
	mbr[446+4], mbr[510], mbr[511] = 0xEE, 0x55, 0xAA
	binary.LittleEndian.PutUint32(mbr[446+8:], 1)
	copy(mbr[512:], "EFI PART")
	f.Add(mbr)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &testutil.Image{Data: data, Size: 3 << 20}
		copies, err := Find(r)
		if err != nil {
			return
		}
		for _, c := range copies {
			text, err := readCopy(r, c)
			if err != nil {
				continue
			}
			if len(text) > MaxSize {
				t.Fatalf("read %d bytes of gridnode.conf, over MaxSize", len(text))
			}
			Edit(bytes.Clone(text), []string{"farm=42"})
		}
	})
}
