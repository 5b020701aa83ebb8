package mediaconf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gridnode/gridnode/build/fat"
	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/upgrade/layout"
)

// Copy is one gridnode.conf inside an image.
type Copy struct {
	// Where says which file system holds it, for messages.
	Where string
	// Off and Size locate the content (ISO 9660 extents are contiguous).
	Off, Size int64
	fat       *fat.Found // set for FAT copies
}

// Find lists the copies of gridnode.conf in the image r: at the root of an
// ISO 9660 file system at offset 0, and at the root of FAT file systems at
// offset 0 or in MBR or GPT partitions. FAT copies come first: they are the
// ones farmers edit.
func Find(r io.ReaderAt) ([]Copy, error) {
	var out []Copy
	starts, err := Partitions(r)
	if err != nil {
		return nil, err
	}
	var broken error // a FAT file system whose gridnode.conf cannot be read
	for _, s := range append([]int64{0}, starts...) {
		f, err := fat.Lookup(r, s, media.ConfigName)
		if err != nil {
			if !errors.Is(err, fat.ErrNotFAT) && !errors.Is(err, fat.ErrNotFound) && broken == nil {
				broken = fmt.Errorf("FAT file system at byte %d: %w", s, err)
			}
			continue
		}
		where := "FAT file system"
		if s != 0 {
			where = fmt.Sprintf("FAT partition at byte %d", s)
		}
		c := Copy{Where: where, Size: f.Size, fat: &f}
		if len(f.Clusters) > 0 { // none when emptied: Set gives it some
			c.Off = f.Clusters[0].Off
		}
		out = append(out, c)
	}
	if c, ok, err := findISO(r); err != nil {
		return nil, err
	} else if ok {
		out = append(out, c)
	}
	if len(out) == 0 && broken != nil {
		return nil, broken
	}
	return out, nil
}

// Partitions returns the byte offsets of MBR and GPT partitions.
func Partitions(r io.ReaderAt) ([]int64, error) {
	mbr := make([]byte, 512)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("reading the partition table: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil, nil
	}
	var out []int64
	gpt := false
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i:]
		start := int64(binary.LittleEndian.Uint32(e[8:]))
		switch {
		case e[4] == 0xEE:
			gpt = true
		case e[4] != 0 && start != 0:
			out = append(out, start*512)
		}
	}
	if !gpt {
		return out, nil
	}
	h := make([]byte, 92)
	if _, err := r.ReadAt(h, 512); err != nil || string(h[:8]) != "EFI PART" {
		return out, nil
	}
	lba := int64(binary.LittleEndian.Uint64(h[72:]))
	n := int64(binary.LittleEndian.Uint32(h[80:]))
	size := int64(binary.LittleEndian.Uint32(h[84:]))
	if n > 1024 || size < 128 || size > 4096 {
		return out, nil
	}
	ents := make([]byte, n*size)
	if _, err := r.ReadAt(ents, lba*512); err != nil {
		return nil, fmt.Errorf("reading GPT entries: %w", err)
	}
	for i := int64(0); i < n; i++ {
		e := ents[i*size:]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue
		}
		out = append(out, int64(binary.LittleEndian.Uint64(e[32:]))*512)
	}
	return out, nil
}

func findISO(r io.ReaderAt) (Copy, bool, error) {
	rec, err := layout.FindRecord(r, media.ConfigName)
	if errors.Is(err, layout.ErrNoISO) || errors.Is(err, layout.ErrNotFound) {
		return Copy{}, false, nil
	}
	if err != nil {
		return Copy{}, false, err
	}
	return Copy{Where: "ISO 9660 file system", Off: rec.LBA * layout.Block, Size: rec.Size}, true, nil
}

// Read returns the configuration text of the image at path (the first copy
// Find lists), without its padding.
func Read(path string) ([]byte, error) {
	f, copies, err := open(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCopy(f, copies[0])
}

// open opens the image at path with flag and finds its copies of
// gridnode.conf; an image without one is an error.
func open(path string, flag int) (*os.File, []Copy, error) {
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, nil, err
	}
	copies, err := Find(f)
	if err == nil && len(copies) == 0 {
		err = fmt.Errorf("%w found (not a gridnode ISO or USB image?)", ErrNoConfig)
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, copies, nil
}

// MaxSize bounds what a gridnode.conf may claim to hold: the media are
// written with Reserved bytes, and a FAT copy may grow to its clusters (at
// most 64 KiB). An image claiming more is damaged or not a gridnode image,
// and is not read into memory on its word.
const MaxSize = 64 << 10

func readCopy(r io.ReaderAt, c Copy) ([]byte, error) {
	if c.Size > MaxSize {
		return nil, fmt.Errorf("%s in the %s claims %d bytes; a gridnode medium's has %d: a damaged image, or not a gridnode one", media.ConfigName, c.Where, c.Size, Reserved)
	}
	b := make([]byte, c.Size)
	if c.fat != nil {
		rest := b
		for _, cl := range c.fat.Clusters {
			n := min(int64(len(rest)), cl.Len)
			if _, err := r.ReadAt(rest[:n], cl.Off); err != nil {
				return nil, err
			}
			rest = rest[n:]
		}
		return Strip(b), nil
	}
	if _, err := r.ReadAt(b, c.Off); err != nil {
		return nil, err
	}
	return Strip(b), nil
}

// Edit applies key=value settings to a gridnode.conf text: a key's line is
// replaced (later duplicates dropped), a "#key=" placeholder is filled in,
// else the new key is appended. The result
// must pass config.ApplyKV.
func Edit(text []byte, kvs []string) ([]byte, error) {
	var lines []string
	if s := strings.TrimRight(string(text), "\n"); s != "" {
		lines = strings.Split(s, "\n")
	}
	for _, kv := range kvs {
		k, v, ok, err := config.ConfLine(kv)
		if err != nil || !ok {
			return nil, fmt.Errorf("%q is not key=value", kv)
		}
		var probe config.Node
		if err := config.Set(&probe, k, v); err != nil {
			return nil, err
		}
		line := k + "=" + v
		done := false
		var out []string
		for _, l := range lines {
			if lk, _, ok, _ := config.ConfLine(l); ok && lk == k {
				if !done {
					out = append(out, line)
					done = true
				}
				continue
			}
			out = append(out, l)
		}
		if !done {
			// The builder writes keys without a value as "#key=": fill in
			// that placeholder rather than add a line after the others.
			for i, l := range out {
				if strings.TrimSpace(l) == "#"+k+"=" {
					out[i], done = line, true
					break
				}
			}
		}
		if !done {
			out = append(out, line)
		}
		lines = out
	}
	result := []byte(strings.Join(lines, "\n") + "\n")
	n := config.Default()
	if err := config.ApplyKV(&n, media.ConfigName, string(result)); err != nil {
		return nil, err
	}
	return result, nil
}

// Set applies key=value settings to every copy of gridnode.conf in the image
// at path, in place: nothing else in the image changes. It returns the new
// text. The base is the first copy Find lists; all copies get the result.
func Set(path string, kvs []string) ([]byte, error) {
	f, copies, err := open(path, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	old, err := readCopy(f, copies[0])
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", path, media.ConfigName, err)
	}
	text, err := Edit(old, kvs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Prepare every copy before writing any, so a failure changes nothing.
	padded := make([][]byte, len(copies))
	for i, c := range copies {
		size := c.Size
		switch {
		case c.fat != nil && len(c.fat.Clusters) == 0:
			size = Reserved // emptied: it gets clusters for Reserved bytes below
		case c.fat != nil && int64(len(text)) > size:
			size = c.fat.Capacity() // FAT: the file may grow into its clusters
		}
		if padded[i], err = Pad(text, int(size)); err != nil {
			return nil, fmt.Errorf("%s: %s in the %s: %w", path, media.ConfigName, c.Where, err)
		}
	}
	for i, c := range copies {
		if c.fat != nil {
			var found fat.Found
			if found, err = fat.Allocate(f, *c.fat, int64(len(padded[i]))); err == nil {
				err = fat.WriteContent(f, found, padded[i])
			}
		} else {
			_, err = f.WriteAt(padded[i], c.Off)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: writing %s in the %s: %w", path, media.ConfigName, c.Where, err)
		}
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return text, nil
}

// ErrNoConfig is returned when an image holds no gridnode.conf.
var ErrNoConfig = errors.New("no " + media.ConfigName)
