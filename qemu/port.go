package qemu

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
)

// TailLines is how many of the last console lines an Expect error shows.
const TailLines = 40

// Port is one serial line of the VM (ttyS0 is the console). It keeps the
// whole transcript, split into lines, and a cursor: each Expect looks at the
// lines after the previous match, including lines that arrived before the
// call. Expect is meant for one goroutine at a time.
type Port struct {
	Name string // "ttyS0", "ttyS1", ...

	w io.Writer // to the guest; nil when not writable

	mu      sync.Mutex
	raw     bytes.Buffer // everything received, as received
	lines   []string     // complete lines, cleaned (see cleanLine)
	partial []byte       // the line being received
	cursor  int          // index into lines of the first line Expect looks at
	closed  bool         // the VM is gone: no more lines will come
	exitMsg string       // why it closed, for errors
	changed chan struct{}
}

func newPort(name string, w io.Writer) *Port {
	return &Port{Name: name, w: w, changed: make(chan struct{})}
}

// Match is a line Expect found.
type Match struct {
	Line   string   // the whole line, without line ending or terminal escapes
	Groups []string // regexp.FindStringSubmatch: Groups[0] is the matched text, then the submatches
}

// Write sends data to the guest on this serial line.
func (p *Port) Write(data []byte) (int, error) {
	if p.w == nil {
		return 0, fmt.Errorf("qemu: %s is not writable", p.Name)
	}
	return p.w.Write(data)
}

// Expect waits until a line after the cursor matches re, and moves the
// cursor past it. It gives up after timeout (none when 0), when ctx is done,
// or when the VM exits; the error then shows the last TailLines lines.
func (p *Port) Expect(ctx context.Context, re *regexp.Regexp, timeout time.Duration) (Match, error) {
	return p.expect(ctx, "`"+re.String()+"`", func(l string) []string { return re.FindStringSubmatch(l) }, timeout)
}

// ExpectString is Expect for a line containing s; it returns the line.
func (p *Port) ExpectString(ctx context.Context, s string, timeout time.Duration) (string, error) {
	m, err := p.expect(ctx, fmt.Sprintf("%q", s), func(l string) []string {
		if strings.Contains(l, s) {
			return []string{s}
		}
		return nil
	}, timeout)
	return m.Line, err
}

func (p *Port) expect(ctx context.Context, what string, match func(string) []string, timeout time.Duration) (Match, error) {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	for {
		p.mu.Lock()
		for i := p.cursor; i < len(p.lines); i++ {
			if g := match(p.lines[i]); g != nil {
				p.cursor = i + 1
				line := p.lines[i]
				p.mu.Unlock()
				return Match{Line: line, Groups: g}, nil
			}
		}
		p.cursor = len(p.lines)
		if p.closed {
			// The last line may lack its newline: look at it too.
			if len(p.partial) > 0 {
				l := cleanLine(p.partial)
				if g := match(l); g != nil {
					p.mu.Unlock()
					return Match{Line: l, Groups: g}, nil
				}
			}
			err := p.errorLocked(what, p.exitMsg)
			p.mu.Unlock()
			return Match{}, err
		}
		changed := p.changed
		p.mu.Unlock()

		select {
		case <-changed:
		case <-deadline:
			return Match{}, p.error(what, fmt.Sprintf("not within %v", timeout))
		case <-ctx.Done():
			return Match{}, p.error(what, context.Cause(ctx).Error())
		}
	}
}

// ExpectError is what Expect returns when no line matched.
type ExpectError struct {
	Port   string   // "ttyS0"
	Want   string   // the pattern, quoted
	Reason string   // "not within 30s", "VM exited: ...", "context canceled"
	Tail   []string // the last TailLines lines
}

func (e *ExpectError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "qemu: %s: no line matching %s: %s; last %d lines:", e.Port, e.Want, e.Reason, len(e.Tail))
	for _, l := range e.Tail {
		b.WriteString("\n  | ")
		b.WriteString(l)
	}
	return b.String()
}

func (p *Port) error(what, reason string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errorLocked(what, reason)
}

func (p *Port) errorLocked(what, reason string) error {
	tail := p.tailLocked(TailLines)
	return &ExpectError{Port: p.Name, Want: what, Reason: reason, Tail: tail}
}

func (p *Port) tailLocked(n int) []string {
	all := p.lines
	if len(p.partial) > 0 {
		all = append(all[:len(all):len(all)], cleanLine(p.partial))
	}
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return append([]string(nil), all...)
}

// Tail returns the last n lines received.
func (p *Port) Tail(n int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tailLocked(n)
}

// Transcript returns everything received so far, as received.
func (p *Port) Transcript() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// Lines returns every complete line received so far, cleaned as Expect sees them.
func (p *Port) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// append records received bytes and wakes waiting Expects.
func (p *Port) append(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.raw.Write(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.partial = append(p.partial, b...)
			break
		}
		p.partial = append(p.partial, b[:i]...)
		p.lines = append(p.lines, cleanLine(p.partial))
		p.partial = p.partial[:0]
		b = b[i+1:]
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// close marks the end of the transcript; msg says why, for errors.
func (p *Port) close(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed, p.exitMsg = true, msg
	close(p.changed)
	p.changed = make(chan struct{})
}

// pump copies r into the port (and into copies) until r ends.
func (p *Port) pump(r io.Reader, copies ...io.Writer) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			for _, w := range copies {
				if w != nil {
					w.Write(buf[:n])
				}
			}
			p.append(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// escapes matches terminal control sequences (CSI and two-byte ESC forms),
// which would otherwise break patterns on colored or redrawn lines.
var escapes = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])`)

// cleanLine drops carriage returns and terminal escapes.
func cleanLine(b []byte) string {
	s := string(b)
	if strings.IndexByte(s, 0x1b) >= 0 {
		s = escapes.ReplaceAllString(s, "")
	}
	// Dropping \r rather than keeping the last redraw of a line keeps
	// every printed word matchable.
	return strings.ReplaceAll(s, "\r", "")
}
