package testutil

import (
	"errors"
	"io"
)

// Image is a disk image in memory: Size bytes, Data and then zeros. A
// fuzz target mutates the few kilobytes of a file system's metadata as
// Data, not the megabytes of the whole image. Writes land in Data, which
// grows as they need, up to Size.
type Image struct {
	Data []byte
	Size int64
}

func (m *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= m.Size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), m.Size-off))
	clear(p[:n])
	if off < int64(len(m.Data)) {
		copy(p[:n], m.Data[off:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *Image) WriteAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	if off < 0 || end > m.Size {
		return 0, errors.New("testutil: write past the end of the image")
	}
	if end > int64(len(m.Data)) {
		m.Data = append(m.Data, make([]byte, end-int64(len(m.Data)))...)
	}
	return copy(m.Data[off:], p), nil
}
