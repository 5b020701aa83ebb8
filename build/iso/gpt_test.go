package iso

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	diskfs "github.com/diskfs/go-diskfs/partition/gpt"
)

// TestGPTBytes: go-diskfs writes the GPT byte for byte as the hand-written
// writer it replaced (TestGPTSameBytesAsDiskfs compared the two, see the
// history of build/iso/gpt_diskfs_test.go); these are that
// writer's sums, so a go-diskfs update that changes a byte fails here.
func TestGPTBytes(t *testing.T) {
	for _, c := range []struct {
		name            string
		typ             diskfs.Type
		sectors         int64
		primary, backup string
	}{
		{"EFI system partition", espType, 100 << 11,
			"5b50c8ffc313084c9f76ddb52385238ef0073023c803a2735809e87451411c73", "f2008d789c7319847ae3d5ad5de704009dcf02ae8db8e748292531dbfa43e125"},
		{"GRIDNODE", basicDataType, 64<<11 + 4,
			"35b71a16da95686f81be96badbb62afbc75a68cef61ab143de6ff4617f0641bd", "7d06de20d6f82afd5ff485579b1cecc53d5dc73b0be54787c6752f7926bba4cf"},
	} {
		seed := sha256.Sum256([]byte(c.name))
		g, err := newGPT(seed, c.sectors, 2048, c.sectors-2048, c.typ, c.name)
		if err != nil {
			t.Fatal(err)
		}
		p, b := sha256.Sum256(g.primary), sha256.Sum256(g.backup)
		if hex.EncodeToString(p[:]) != c.primary || hex.EncodeToString(b[:]) != c.backup {
			t.Errorf("%s: primary sha256 %x, backup %x; want %s, %s", c.name, p, b, c.primary, c.backup)
		}
	}
}

// The partition GUIDs come from the seed, in the on-disk byte order the
// hand-written writer used: version 4, RFC 4122 variant.
func TestGUID(t *testing.T) {
	b := []byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	if got, want := guid(b), "00112233-4455-4677-8899-aabbccddeeff"; got != want {
		t.Errorf("guid = %s, want %s", got, want)
	}
}
