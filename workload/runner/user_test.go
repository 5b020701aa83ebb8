package runner

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUser(t *testing.T) {
	low, top := t.TempDir(), t.TempDir()
	for d, passwd := range map[string]string{
		low: "root:x:0:0::/:/bin/sh\nold:x:5:5::/:/bin/sh\n",
		top: "root:x:0:0::/:/bin/sh\nweb:x:1000:1001::/:/bin/sh\n",
	} {
		os.MkdirAll(filepath.Join(d, "etc"), 0o755)
		os.WriteFile(filepath.Join(d, "etc", "passwd"), []byte(passwd), 0o644)
	}
	os.WriteFile(filepath.Join(top, "etc", "group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644)
	// A link out of the image must not be followed to the node's file.
	os.Symlink("/etc/passwd", filepath.Join(low, "etc", "group"))
	layers := []string{low, top}
	for _, c := range []struct {
		spec     string
		uid, gid uint32
	}{
		{"", 0, 0}, {"web", 1000, 1001}, {"1000", 1000, 1001}, {"4242", 4242, 0},
		{"web:staff", 1000, 50}, {"7:8", 7, 8},
	} {
		uid, gid, err := user(c.spec, layers)
		if err != nil || uid != c.uid || gid != c.gid {
			t.Errorf("user %q: %d:%d %v, want %d:%d", c.spec, uid, gid, err, c.uid, c.gid)
		}
	}
	for _, bad := range []string{"old", "nobody", "web:nogroup"} {
		if _, _, err := user(bad, layers); err == nil {
			t.Errorf("user %q resolved", bad)
		}
	}
	if _, _, err := user("web:root", []string{low}); err == nil {
		t.Error("a group file that links out of the image was read")
	}
}
