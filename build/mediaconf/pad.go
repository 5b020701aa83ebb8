// Package mediaconf handles the farmer-editable gridnode.conf on boot media:
// the fixed-size, padded form the image writers put on ISO and USB images,
// and `gridnode image set`, which rewrites it in place inside an image.
package mediaconf

import (
	"bytes"
	"fmt"
)

// Reserved is the size gridnode.conf has on a medium: the text, then
// comment lines of '#' as padding, so it can be rewritten in place.
const Reserved = 4096

// Pad returns text padded to size bytes with lines of '#'.
func Pad(text []byte, size int) ([]byte, error) {
	b := append([]byte(nil), text...)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	if len(b) > size {
		return nil, fmt.Errorf("gridnode.conf is %d bytes, more than the %d reserved on the medium; shorten it", len(b), size)
	}
	for len(b) < size {
		n := min(size-len(b), 64)
		b = append(b, bytes.Repeat([]byte("#"), n-1)...)
		b = append(b, '\n')
	}
	return b, nil
}

// Strip removes the padding Pad added (trailing lines of only '#', blank
// lines, NUL bytes).
func Strip(b []byte) []byte {
	b = bytes.TrimRight(b, "\x00")
	lines := bytes.SplitAfter(b, []byte("\n"))
	for len(lines) > 0 {
		l := bytes.TrimSpace(lines[len(lines)-1])
		if len(bytes.Trim(l, "#")) != 0 {
			break
		}
		lines = lines[:len(lines)-1]
	}
	return bytes.Join(lines, nil)
}
