// Package logs keeps a workload's output in a size-capped file on the cache
// disk: NAME.log, and NAME.log.1 with the older half once NAME.log reached
// half the cap, so the two never hold more than the cap together and the
// newest output is always kept.
package logs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
)

// File is a capped log file. Writes and reads are safe for concurrent
// use.
type File struct {
	path string
	half int64

	mu      sync.Mutex
	f       *os.File
	size    int64
	gen     int // rotations so far, for followers
	waiters []chan struct{}
}

// Open opens (or makes) the log at path, capped at capBytes.
func Open(path string, capBytes int64) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{path: path, half: max(capBytes/2, 1), f: f, size: fi.Size()}, nil
}

// Write appends p, rotating first when the file would pass half the cap.
// A write larger than half the cap keeps only its end.
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	if int64(len(p)) > l.half {
		p = p[int64(len(p))-l.half:]
	}
	if l.size+int64(len(p)) > l.half {
		if err := l.rotateLocked(); err != nil {
			return 0, err
		}
	}
	w, err := l.f.Write(p)
	l.size += int64(w)
	for _, c := range l.waiters {
		close(c)
	}
	l.waiters = nil
	if err != nil {
		return w, err
	}
	return n, nil
}

func (l *File) rotateLocked() error {
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	l.f.Close()
	l.f, l.size = f, 0
	l.gen++
	return nil
}

// Close closes the file; the log stays on disk.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// Tail returns at most n bytes of the newest output (n <= 0: all of it)
// and a position to Follow from.
func (l *File) Tail(n int64) ([]byte, Pos, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, err := os.ReadFile(l.path)
	if err != nil {
		return nil, Pos{}, err
	}
	old, err := os.ReadFile(l.path + ".1")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, Pos{}, err
	}
	b := append(old, cur...)
	if n > 0 && int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return b, Pos{gen: l.gen, off: int64(len(cur))}, nil
}

// Pos is a place in the log: what a follower has read.
type Pos struct {
	gen int
	off int64
}

// Follow returns what was written after pos, and the new position; when
// nothing was, it returns a channel closed at the next write.
func (l *File) Follow(pos Pos) ([]byte, Pos, <-chan struct{}, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []byte
	if pos.gen != l.gen {
		// Rotated since: the rest of the old file, then the new one.
		if pos.gen == l.gen-1 {
			b, err := readFrom(l.path+".1", pos.off)
			if err != nil {
				return nil, pos, nil, err
			}
			out = b
		}
		pos = Pos{gen: l.gen}
	}
	b, err := readFrom(l.path, pos.off)
	if err != nil {
		return nil, pos, nil, err
	}
	out = append(out, b...)
	pos.off += int64(len(b))
	if len(out) > 0 {
		return out, pos, nil, nil
	}
	c := make(chan struct{})
	l.waiters = append(l.waiters, c)
	return nil, pos, c, nil
}

func readFrom(path string, off int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}
