// Package need is what a test does when something it needs is not on this
// machine: an external tool that is its oracle (fsck.vfat, xorriso, mtools),
// QEMU, firmware, root. Outside CI the test skips and says what to install.
// Under CI (CI set in the environment, as .ci/test.sh sets it) it fails:
// `make test` installs everything through .ci/deps.sh, so a missing piece is
// a broken machine, and a check that silently did not run would pass without
// checking anything.
//
// This is grid/registrar/store/storetest.PostgresURL's rule for PostgreSQL
// and gokrazy's mandatory dosfsck oracle, written once for every tool.
package need

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
)

// InCI reports whether the tests run under CI, where nothing may be missing.
func InCI() bool { return os.Getenv("CI") != "" }

// Missing stops t for want of what format says: it skips, or under CI fails.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI: %s", msg)
	}
	t.Skip(msg)
}

// Packages maps every external tool a test may ask for to the Debian package
// that has it. Each of these packages is installed by .ci/deps.sh (a test of
// this package checks it), so that under CI none can be missing.
var Packages = map[string]string{
	"blkid":              "util-linux",
	"fsck.vfat":          "dosfstools",
	"mkfs.vfat":          "dosfstools",
	"mkfs.ext4":          "e2fsprogs",
	"e2fsck":             "e2fsprogs",
	"dumpe2fs":           "e2fsprogs",
	"mtype":              "mtools",
	"mdir":               "mtools",
	"mcopy":              "mtools",
	"mmd":                "mtools",
	"xorriso":            "xorriso",
	"objdump":            "binutils",
	"objcopy":            "binutils",
	"sfdisk":             "fdisk",
	"sha256sum":          "coreutils",
	"losetup":            "mount",
	"ip":                 "iproute2",
	"qemu-system-x86_64": "qemu-system-x86",
	"qemu-img":           "qemu-utils",
	"chromium":           "chromium",
	"runc":               "runc",
	"nft":                "nftables",
	"busybox":            "busybox-static",
	"skopeo":             "skopeo",
}

// sbin is searched after $PATH: a user's PATH often lacks it, and mkfs,
// fsck and blkid live there.
var sbin = []string{"/usr/sbin", "/sbin"}

// Tool returns the path of the external program name, or stops t (see
// Missing) when it is not installed. name must be listed in Packages.
func Tool(t testing.TB, name string) string {
	t.Helper()
	pkg, ok := Packages[name]
	if !ok {
		t.Fatalf("need: no Debian package known for tool %q: add it to need.Packages and its package to .ci/deps.sh", name)
	}
	if p, err := Look(name); err == nil {
		return p
	}
	Missing(t, "%s not installed (Debian package %s; make deps installs it)", name, pkg)
	return ""
}

// Look finds name in $PATH, then in the sbin folders.
func Look(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, d := range sbin {
		if q, e := exec.LookPath(filepath.Join(d, name)); e == nil {
			return q, nil
		}
	}
	return "", err
}

// File stops t (see Missing) when path does not exist; pkg is the Debian
// package that has it.
func File(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, "%s missing (Debian package %s; make deps installs it): %v", path, pkg, err)
	}
}

// Root stops t (see Missing) unless the test runs as root; why says what
// for (loop devices, network namespaces).
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root for %s (CI runs as root)", why)
	}
}

// PackageNames lists the Debian packages of Packages, sorted and once each.
func PackageNames() []string {
	seen := map[string]bool{}
	var l []string
	for _, p := range Packages {
		if !seen[p] {
			seen[p] = true
			l = append(l, p)
		}
	}
	sort.Strings(l)
	return l
}
