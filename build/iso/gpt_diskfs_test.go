package iso

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"testing"

	diskfs "github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/google/uuid"
)

// memDisk is a sparse disk in memory for go-diskfs to write to.
type memDisk struct {
	size int64
	b    map[int64]byte
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	for i, c := range p {
		m.b[off+int64(i)] = c
	}
	return len(p), nil
}
func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		p[i] = m.b[off+int64(i)]
	}
	return len(p), nil
}
func (m *memDisk) Seek(int64, int) (int64, error) { return 0, nil }
func (m *memDisk) Read([]byte) (int, error)       { return 0, io.EOF }
func (m *memDisk) Stat() (fs.FileInfo, error)     { return nil, fmt.Errorf("no stat") }
func (m *memDisk) Close() error                   { return nil }
func (m *memDisk) bytes(off, n int64) []byte {
	p := make([]byte, n)
	m.ReadAt(p, off)
	return p
}

// uuidOf turns on-disk GUID bytes (first three groups little-endian) into
// the UUID string go-diskfs takes.
func uuidOf(g [16]byte) string {
	var u uuid.UUID
	copy(u[:], g[:])
	u[0], u[1], u[2], u[3] = g[3], g[2], g[1], g[0]
	u[4], u[5] = g[5], g[4]
	u[6], u[7] = g[7], g[6]
	return u.String()
}

func TestGPTSameBytesAsDiskfs(t *testing.T) {
	for _, c := range []struct {
		name    string
		typ     [16]byte
		gtyp    diskfs.Type
		sectors int64
	}{
		{"EFI system partition", espType, diskfs.EFISystemPartition, 100 << 11},
		{"GRIDNODE", basicDataType, diskfs.MicrosoftBasicData, 64<<11 + 4},
	} {
		seed := sha256.Sum256([]byte(c.name))
		first, last := int64(2048), c.sectors-2048
		ours := newGPT(seed, c.sectors, first, last, c.typ, c.name)

		disk := &memDisk{size: c.sectors * 512, b: map[int64]byte{}}
		table := &diskfs.Table{
			LogicalSectorSize: 512, PhysicalSectorSize: 512,
			GUID: uuidOf(guid(seed[8:24])),
			Partitions: []*diskfs.Partition{{
				Index: 1, Start: uint64(first), End: uint64(last), Type: c.gtyp, Name: c.name, GUID: uuidOf(guid(seed[16:32])),
			}},
		}
		if err := table.Write(disk, c.sectors*512); err != nil {
			t.Fatal(err)
		}
		theirs := gpt{primary: disk.bytes(512, gptBytes), backup: disk.bytes(c.sectors*512-gptBytes, gptBytes)}
		t.Logf("%s, %d sectors: ours primary sha256 %x backup %x", c.name, c.sectors, sha256.Sum256(ours.primary), sha256.Sum256(ours.backup))
		t.Logf("%s, %d sectors: go-diskfs primary sha256 %x backup %x", c.name, c.sectors, sha256.Sum256(theirs.primary), sha256.Sum256(theirs.backup))
		for _, p := range []struct {
			what string
			a, b []byte
		}{{"primary", ours.primary, theirs.primary}, {"backup", ours.backup, theirs.backup}} {
			if !bytes.Equal(p.a, p.b) {
				for i := range p.a {
					if p.a[i] != p.b[i] {
						t.Errorf("%s: %s GPT differs first at byte %d: ours %#x, go-diskfs %#x", c.name, p.what, i, p.a[i], p.b[i])
						break
					}
				}
			}
		}
		if n := len(disk.b) - 2*gptBytes; n > 0 {
			t.Errorf("go-diskfs wrote %d bytes outside the two GPT copies", n)
		}
	}
}
