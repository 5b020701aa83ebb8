package logs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCap: however much is written, the two files hold at most the cap,
// and the newest output is there, in order.
func TestCap(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.log")
	l, err := Open(p, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for i := range 500 {
		line := fmt.Sprintf("line %03d\n", i)
		all.WriteString(line)
		if _, err := l.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.Stat(p)
	b, _ := os.Stat(p + ".1")
	if a.Size()+b.Size() > 1000 {
		t.Fatalf("log files hold %d bytes; cap 1000", a.Size()+b.Size())
	}
	got, _, err := l.Tail(0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(all.String(), string(got)) || len(got) < 500 {
		t.Fatalf("Tail = %d bytes, not the newest output in order", len(got))
	}
	last, _, _ := l.Tail(9)
	if string(last) != "line 499\n" {
		t.Fatalf("Tail(9) = %q", last)
	}
	l.Close()
	// Reopened (the module restarted), it keeps counting what is there.
	l2, _ := Open(p, 1000)
	l2.Write(bytes.Repeat([]byte("x"), 600))
	a, _ = os.Stat(p)
	b, _ = os.Stat(p + ".1")
	if a.Size()+b.Size() > 1000 {
		t.Fatalf("after a reopen and a big write the files hold %d bytes", a.Size()+b.Size())
	}
}

// TestFollow: a follower gets every byte written after its position, across
// a rotation, and is woken by a write.
func TestFollow(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "w.log"), 100)
	if err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("before\n"))
	_, pos, _ := l.Tail(0)
	var got bytes.Buffer
	var want bytes.Buffer
	for i := range 20 {
		b, p, wake, err := l.Follow(pos)
		if err != nil {
			t.Fatal(err)
		}
		got.Write(b)
		pos = p
		if wake != nil {
			line := fmt.Sprintf("after %02d\n", i) // 9 bytes: rotates every 5 lines
			want.WriteString(line)
			go l.Write([]byte(line))
			select {
			case <-wake:
			case <-time.After(10 * time.Second):
				t.Fatal("the follower was not woken by a write")
			}
			b, p, _, _ = l.Follow(pos)
			got.Write(b)
			pos = p
		}
	}
	if got.String() != want.String() {
		t.Fatalf("followed %q\nwant %q", got.String(), want.String())
	}
}
