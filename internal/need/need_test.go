package need

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// Every tool's package is one .ci/deps.sh installs: under CI a tool that
// Tool knows cannot be missing on a machine `make deps` prepared.
func TestEveryPackageIsInstalledByDeps(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	script, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", ".ci", "deps.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\npkgs=\((.*?)\n\)`).FindSubmatch(script)
	if m == nil {
		t.Fatal(".ci/deps.sh has no pkgs=( … ) list")
	}
	installed := map[string]bool{}
	for _, line := range strings.Split(string(m[1]), "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, p := range strings.Fields(line) {
			installed[p] = true
		}
	}
	for _, p := range PackageNames() {
		if !installed[p] {
			t.Errorf("package %s (of tools %s) is not in .ci/deps.sh's pkgs", p, toolsOf(p))
		}
	}
}

func toolsOf(pkg string) string {
	var l []string
	for tool, p := range Packages {
		if p == pkg {
			l = append(l, tool)
		}
	}
	return strings.Join(l, ", ")
}

// fakeT records how a test ended: Fatalf and Skip end its goroutine, as
// the testing package's do.
type fakeT struct {
	testing.TB
	fatal, skip string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, a ...any) {
	f.fatal = fmt.Sprintf(format, a...)
	runtime.Goexit()
}
func (f *fakeT) Skip(a ...any) {
	f.skip = fmt.Sprint(a...)
	runtime.Goexit()
}

// run calls fn with a fakeT in a goroutine of its own and returns it.
func run(t *testing.T, fn func(testing.TB)) *fakeT {
	f := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

// A tool missing from PATH skips the test outside CI and fails it under CI.
func TestMissingToolSkipsOrFailsUnderCI(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // xorriso is in /usr/bin: not on this PATH, nor in sbin
	t.Setenv("CI", "")
	f := run(t, func(tb testing.TB) { Tool(tb, "xorriso") })
	if f.fatal != "" || !strings.Contains(f.skip, "xorriso not installed (Debian package xorriso") {
		t.Errorf("outside CI: fatal %q, skip %q; want a skip naming the package", f.fatal, f.skip)
	}
	t.Setenv("CI", "1")
	f = run(t, func(tb testing.TB) { Tool(tb, "xorriso") })
	if f.skip != "" || !strings.Contains(f.fatal, "CI: xorriso not installed") {
		t.Errorf("under CI: fatal %q, skip %q; want a failure", f.fatal, f.skip)
	}
}

func TestToolFindsAnInstalledTool(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "mtype")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	t.Setenv("CI", "1")
	var got string
	f := run(t, func(tb testing.TB) { got = Tool(tb, "mtype") })
	if f.fatal != "" || f.skip != "" || got != fake {
		t.Errorf("Tool = %q (fatal %q, skip %q), want %s", got, f.fatal, f.skip, fake)
	}
}

// A tool Packages does not list is a mistake in the test, whatever CI says:
// nothing would install it.
func TestUnknownToolFails(t *testing.T) {
	t.Setenv("CI", "")
	f := run(t, func(tb testing.TB) { Tool(tb, "no-such-tool") })
	if !strings.Contains(f.fatal, "add it to need.Packages") {
		t.Errorf("fatal %q, skip %q; want a failure saying where to add it", f.fatal, f.skip)
	}
}

func TestFileAndRoot(t *testing.T) {
	t.Setenv("CI", "1")
	f := run(t, func(tb testing.TB) { File(tb, filepath.Join(t.TempDir(), "OVMF_CODE.fd"), "ovmf") })
	if !strings.Contains(f.fatal, "Debian package ovmf") {
		t.Errorf("missing file under CI: fatal %q, skip %q", f.fatal, f.skip)
	}
	f = run(t, func(tb testing.TB) { Root(tb, "a loop device") })
	if os.Geteuid() == 0 && (f.fatal != "" || f.skip != "") {
		t.Errorf("as root: fatal %q, skip %q", f.fatal, f.skip)
	}
	if os.Geteuid() != 0 && !strings.Contains(f.fatal, "needs root for a loop device") {
		t.Errorf("not root, under CI: fatal %q", f.fatal)
	}
}
