package qemu

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestExpectFindsLinesThatArrivedBeforeTheCall(t *testing.T) {
	p := newPort("ttyS0", nil)
	p.append([]byte("booting\r\nnode id 42 registered\r\nready\r\n"))
	m, err := p.Expect(t.Context(), regexp.MustCompile(`node id (\d+)`), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Line != "node id 42 registered" || m.Groups[1] != "42" {
		t.Errorf("match = %+v, want line %q and group 42", m, "node id 42 registered")
	}
}

func TestExpectCursorMovesPastTheMatch(t *testing.T) {
	p := newPort("ttyS0", nil)
	p.append([]byte("step 1\nstep 2\n"))
	ctx := t.Context()
	if _, err := p.ExpectString(ctx, "step 2", time.Second); err != nil {
		t.Fatal(err)
	}
	// "step 1" is behind the cursor now: a later Expect must not see it.
	if _, err := p.ExpectString(ctx, "step 1", 10*time.Millisecond); err == nil {
		t.Error("Expect matched a line before the cursor")
	}
}

func TestExpectWaitsForLinesInPieces(t *testing.T) {
	p := newPort("ttyS0", nil)
	go func() {
		p.append([]byte("hel"))
		p.append([]byte("lo wor"))
		p.append([]byte("ld\n"))
	}()
	l, err := p.ExpectString(t.Context(), "hello world", 5*time.Second)
	if err != nil || l != "hello world" {
		t.Fatalf("ExpectString = %q, %v; want the joined line", l, err)
	}
}

func TestExpectTimeoutShowsTheConsoleTail(t *testing.T) {
	p := newPort("ttyS0", nil)
	for i := range 100 {
		p.append([]byte("line " + strconv.Itoa(i) + "\n"))
	}
	_, err := p.ExpectString(t.Context(), "never printed", 20*time.Millisecond)
	var ee *ExpectError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *ExpectError", err)
	}
	if len(ee.Tail) != TailLines || ee.Tail[TailLines-1] != "line 99" || ee.Tail[0] != "line 60" {
		t.Errorf("tail = %q, want lines 60..99", ee.Tail)
	}
	for _, want := range []string{`"never printed"`, "not within 20ms", "  | line 99"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestExpectEndsWhenTheVMExits(t *testing.T) {
	p := newPort("ttyS0", nil)
	p.append([]byte("Kernel panic - not syncing\n"))
	go p.close("VM exited (exit status 1)")
	_, err := p.ExpectString(context.Background(), "login:", 0)
	if err == nil || !strings.Contains(err.Error(), "VM exited") || !strings.Contains(err.Error(), "Kernel panic") {
		t.Errorf("err = %v, want the exit and the tail", err)
	}
}

func TestExpectMatchesTheLastLineWithoutNewlineAfterExit(t *testing.T) {
	p := newPort("ttyS0", nil)
	p.append([]byte("bye"))
	p.close("VM exited")
	if _, err := p.ExpectString(t.Context(), "bye", time.Second); err != nil {
		t.Error(err)
	}
}

func TestExpectHonoursContext(t *testing.T) {
	p := newPort("ttyS0", nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.ExpectString(ctx, "x", 0); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("err = %v, want context canceled", err)
	}
}

func TestCleanLineDropsEscapesAndCarriageReturns(t *testing.T) {
	got := cleanLine([]byte("\x1b[1;32mOK\x1b[0m network up\r"))
	if got != "OK network up" {
		t.Errorf("cleanLine = %q", got)
	}
}

func TestWriteToUnwritablePort(t *testing.T) {
	if _, err := newPort("ttyS0", nil).Write([]byte("x")); err == nil {
		t.Error("Write on a port without a writer succeeded")
	}
}
