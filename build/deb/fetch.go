package deb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Fetch returns the .deb for name, which is either a path to a .deb file or
// a Debian package name, optionally NAME=VERSION. Named packages are looked up
// in cache first (a warm build asks no network); otherwise apt-get download
// fetches the candidate version into cache.
func Fetch(ctx context.Context, cache, name string) (*Package, error) {
	if strings.HasSuffix(name, ".deb") {
		return Open(name)
	}
	pkg, version, _ := strings.Cut(name, "=")
	if version == "" {
		v, err := candidate(ctx, cache, pkg)
		if err != nil {
			return nil, err
		}
		version = v
	}
	if p := cached(cache, pkg, version); p != nil {
		return p, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	// Several builds (test binaries of several packages) may fetch into one
	// cache at once: one downloads, the others then find its file.
	unlock, err := lock(filepath.Join(cache, ".fetch.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if p := cached(cache, pkg, version); p != nil {
		return p, nil
	}
	cmd := exec.CommandContext(ctx, "apt-get", "download", pkg+"="+version)
	cmd.Dir = cache
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("apt-get download %s=%s: %v: %s; run make deps (apt-get update) and check the package name", pkg, version, err, strings.TrimSpace(out.String()))
	}
	if p := cached(cache, pkg, version); p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("apt-get download %s=%s left no .deb in %s", pkg, version, cache)
}

// cached finds PKG_VERSION_ARCH.deb in cache (apt-get escapes ':' as %3a).
func cached(cache, pkg, version string) *Package {
	v := strings.ReplaceAll(version, ":", "%3a")
	for _, arch := range []string{"amd64", "all"} {
		p := filepath.Join(cache, fmt.Sprintf("%s_%s_%s.deb", pkg, v, arch))
		if _, err := os.Stat(p); err == nil {
			if d, err := Open(p); err == nil {
				return d
			}
		}
	}
	return nil
}

// candidate asks apt's local lists which version of pkg would be installed.
// apt-cache takes about a second a call, so answers are remembered in
// cache/candidates.json until apt's lists change (apt-get update).
func candidate(ctx context.Context, cache, pkg string) (string, error) {
	memo := filepath.Join(cache, "candidates.json")
	var m struct {
		Lists    string
		Versions map[string]string
	}
	lists := listsStamp()
	if b, err := os.ReadFile(memo); err == nil && json.Unmarshal(b, &m) == nil && m.Lists == lists {
		if v := m.Versions[pkg]; v != "" {
			return v, nil
		}
	}
	if m.Lists != lists || m.Versions == nil {
		m.Lists, m.Versions = lists, map[string]string{}
	}
	v, err := aptCandidate(ctx, pkg)
	if err != nil {
		return "", err
	}
	m.Versions[pkg] = v
	if b, err := json.Marshal(m); err == nil && lists != "" {
		os.MkdirAll(cache, 0o755)
		os.WriteFile(memo, b, 0o644)
	}
	return v, nil
}

// listsStamp changes whenever apt's package lists do.
func listsStamp() string {
	var stamp string
	for _, p := range []string{"/var/lib/apt/lists", "/var/cache/apt/pkgcache.bin", "/etc/apt/preferences.d", "/etc/apt/sources.list.d", "/etc/apt/sources.list"} {
		if st, err := os.Stat(p); err == nil {
			stamp += fmt.Sprintf("%s:%d;", p, st.ModTime().UnixNano())
		}
	}
	return stamp
}

func aptCandidate(ctx context.Context, pkg string) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "policy", pkg).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache policy %s: %v; is this a Debian machine? run make deps", pkg, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok {
			v = strings.TrimSpace(v)
			if v == "" || v == "(none)" {
				break
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("package %q: not known to apt; check the name, or run apt-get update (make deps)", pkg)
}

// DependsOn returns the first dependency of p whose name starts with prefix,
// as kernel metapackages name their versioned image.
func (p *Package) DependsOn(prefix string) string {
	for _, alt := range strings.Split(p.Depends, ",") {
		for _, d := range strings.Split(alt, "|") {
			n := strings.Fields(strings.TrimSpace(d))
			if len(n) > 0 && strings.HasPrefix(n[0], prefix) {
				return n[0]
			}
		}
	}
	return ""
}

// lock takes an exclusive lock on the file at path, waiting for it.
func lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
