// Package tests builds real gridnode images and boots them in QEMU. Each test
// waits on console lines or states with deadlines, never on sleeps; a failing
// test prints the tail of the node's console.
package tests

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/build"
	"github.com/gridnode/gridnode/build/spec"
	"github.com/gridnode/gridnode/qemu"
)

// epoch is the SOURCE_DATE_EPOCH of every test build.
var epoch = time.Unix(1700000000, 0).UTC()

var (
	root     = mustRoot()
	imagesMu sync.Mutex
	images   = map[string]*build.Result{}
)

func mustRoot() string {
	r, err := build.FindSource(".")
	if err != nil {
		panic(err)
	}
	return r
}

// image builds images/NAME.yaml (with formats) once per test binary and
// returns the result; later calls reuse it.
func image(t *testing.T, name string, formats ...string) *build.Result {
	t.Helper()
	key := name + ":" + strings.Join(formats, ",")
	imagesMu.Lock()
	defer imagesMu.Unlock()
	if r := images[key]; r != nil {
		return r
	}
	out := filepath.Join(root, ".cache", "tests", strings.NewReplacer(":", "-", ",", "-").Replace(key))
	r := buildTo(t, name, out, formats...)
	images[key] = r
	return r
}

func buildTo(t *testing.T, name, out string, formats ...string) *build.Result {
	t.Helper()
	return buildSpec(t, loadSpec(t, name), out, formats...)
}

// loadSpec reads images/NAME.yaml, for a test to change before buildSpec.
func loadSpec(t *testing.T, name string) *spec.Spec {
	t.Helper()
	s, err := spec.Load(filepath.Join(root, "images", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// buildSpec builds s into out (emptied first).
func buildSpec(t *testing.T, s *spec.Spec, out string, formats ...string) *build.Result {
	t.Helper()
	name := strings.TrimSuffix(filepath.Base(s.File), ".yaml")
	os.RemoveAll(out)
	r, err := build.Build(context.Background(), build.Options{
		Spec: s, Out: out, Cache: filepath.Join(root, ".cache"), Src: root,
		Epoch: epoch, Formats: formats, Warn: io.Discard,
	})
	if err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	return r
}

// boot starts a VM and kills it when the test ends; the console goes to the
// test log only when the test fails (through the error's tail) or with -v.
func boot(t *testing.T, o qemu.Options) *qemu.VM {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if testing.Verbose() && o.ConsoleOut == nil {
		o.ConsoleOut = prefixWriter{t}
	}
	vm, err := qemu.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	return vm
}

// kernelBoot is the direct-kernel boot of a built image with extra
// command-line arguments.
func kernelBoot(r *build.Result, extra ...string) qemu.Boot {
	return qemu.KernelBoot(r.Kernel, r.Initramfs, strings.Join(append([]string{r.Cmdline}, extra...), " "))
}

// bootTimeout bounds a boot to ready under TCG on a loaded 2-core machine.
const bootTimeout = 4 * time.Minute

func expect(t *testing.T, vm *qemu.VM, re string, timeout time.Duration) qemu.Match {
	t.Helper()
	m, err := vm.Expect(context.Background(), regexp.MustCompile(re), timeout)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type prefixWriter struct{ t *testing.T }

func (w prefixWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log("console: " + strings.TrimRight(l, "\r"))
	}
	return len(b), nil
}
