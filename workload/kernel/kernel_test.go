package kernel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Load runs no program when sysfs lists every module, and does when one is
// missing.
func TestLoaded(t *testing.T) {
	dir := t.TempDir()
	for i, m := range Modules {
		if loaded(dir) {
			t.Fatalf("loaded with %d of %d modules in sysfs", i, len(Modules))
		}
		if err := os.Mkdir(filepath.Join(dir, strings.ReplaceAll(m, "-", "_")), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if !loaded(dir) {
		t.Fatal("not loaded with every module in sysfs")
	}
}
