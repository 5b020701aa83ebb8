// Package logs handles the output of supervised services: each line is
// tagged with the service's name on the console (Console), the last lines
// of each service are kept (Ring) for /log/NAME and the status screen, and
// written out as NAME.log in a folder (Dir) at most once a second.
package logs

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Console writes tagged lines, "TAG: text", one Write per line so that the
// lines of different services never interleave.
type Console struct {
	mu sync.Mutex
	w  io.Writer
}

// NewConsole writes on w (io.Discard when nil).
func NewConsole(w io.Writer) *Console {
	if w == nil {
		w = io.Discard
	}
	return &Console{w: w}
}

// Line writes one line tagged with tag.
func (c *Console) Line(tag, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	io.WriteString(c.w, tag+": "+text+"\n")
}

// Lines calls line for each line read from r until it ends, without the
// line's end (\n or \r\n). A line longer than the buffer comes in pieces
// of the buffer's size, so one endless line cannot exhaust memory.
func Lines(r io.Reader, line func(string)) {
	br := bufio.NewReaderSize(r, 4096)
	for {
		l, _, err := br.ReadLine()
		if err != nil {
			return
		}
		line(strings.TrimRight(string(l), "\r"))
	}
}

// Ring keeps the last lines of a service's output.
type Ring struct {
	mu    sync.Mutex
	buf   []string
	next  int
	full  bool
	dirty bool // lines were added since the last TakeDirty
}

// NewRing keeps n lines.
func NewRing(n int) *Ring { return &Ring{buf: make([]string, n)} }

// Add keeps a line, dropping the oldest when full.
func (r *Ring) Add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
	r.dirty = true
}

// Lines returns the kept lines, oldest first.
func (r *Ring) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]string(nil), r.buf[:r.next]...)
	}
	return append(append([]string(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}

// TakeDirty says whether lines came since the last call.
func (r *Ring) TakeDirty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.dirty
	r.dirty = false
	return d
}

// Dir writes rings as NAME.log files in a folder.
type Dir string

// Write writes the ring of each name whose lines changed since the last
// Write, or every ring with all. Errors are dropped: the logs are a
// convenience, the console has every line.
func (d Dir) Write(names []string, rings map[string]*Ring, all bool) {
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return
	}
	for _, n := range names {
		r := rings[n]
		if r == nil || (!r.TakeDirty() && !all) {
			continue
		}
		data := strings.Join(r.Lines(), "\n")
		if data != "" {
			data += "\n"
		}
		// Not fact.WriteFile: no fsync for logs on tmpfs, once a second.
		p := filepath.Join(string(d), n+".log")
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(data), 0o644); err == nil {
			os.Rename(tmp, p)
		}
	}
}

// Keep writes the rings that changed once a second, and all of them once
// stop is closed, then returns.
func (d Dir) Keep(stop <-chan struct{}, names []string, rings map[string]*Ring) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			d.Write(names, rings, true)
			return
		case <-t.C:
			d.Write(names, rings, false)
		}
	}
}
