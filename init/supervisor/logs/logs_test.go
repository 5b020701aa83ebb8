package logs

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestRingKeepsLastLines(t *testing.T) {
	r := NewRing(3)
	for i := 0; i < 5; i++ {
		r.Add(strconv.Itoa(i))
	}
	if got := strings.Join(r.Lines(), ","); got != "2,3,4" {
		t.Errorf("ring: %s", got)
	}
}

// TestLinesSplits: lines end at \n or \r\n; an endless line comes in
// pieces of the buffer's size.
func TestLinesSplits(t *testing.T) {
	var got []string
	long := strings.Repeat("x", 5000)
	Lines(strings.NewReader("a\r\nb\n"+long+"\nlast"), func(l string) { got = append(got, l) })
	if len(got) != 5 || got[0] != "a" || got[1] != "b" || got[2]+got[3] != long || len(got[2]) != 4096 || got[4] != "last" {
		t.Errorf("lines: %d of them, lengths %v", len(got), lens(got))
	}
}

func lens(l []string) []int {
	var n []int
	for _, s := range l {
		n = append(n, len(s))
	}
	return n
}

func TestConsoleTags(t *testing.T) {
	var b strings.Builder
	NewConsole(&b).Line("hardware", "hello")
	if b.String() != "hardware: hello\n" {
		t.Errorf("console: %q", b.String())
	}
}

// TestDirWritesChangedRings: Write writes the rings with new lines, Keep
// writes them all when it stops.
func TestDirWritesChangedRings(t *testing.T) {
	dir := Dir(filepath.Join(t.TempDir(), "log"))
	a, b := NewRing(10), NewRing(10)
	rings := map[string]*Ring{"a": a, "b": b}
	a.Add("one")
	dir.Write([]string{"a", "b"}, rings, false)
	if got := read(t, dir, "a"); got != "one\n" {
		t.Errorf("a.log: %q", got)
	}
	if _, err := os.Stat(filepath.Join(string(dir), "b.log")); !os.IsNotExist(err) {
		t.Errorf("b.log written without a line: %v", err)
	}
	stop := make(chan struct{})
	close(stop)
	b.Add("two")
	dir.Keep(stop, []string{"a", "b"}, rings)
	if got := read(t, dir, "b"); got != "two\n" {
		t.Errorf("b.log after Keep stopped: %q", got)
	}
}

func read(t *testing.T, d Dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(string(d), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
