package container

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testConfig() Config {
	return Config{
		ID: "t1-web.web.g1", Hostname: "web", Args: []string{"/bin/sh"}, Layers: []string{"/l/top", "/l/base"},
		CPUs: 0.5, MemoryBytes: 64 << 20, Pids: 128, DiskBytes: 512 << 20,
		IDs: Range{HostID: FirstHostID + RangeSize, Size: RangeSize}, NetNS: "/run/netns/t1-web",
		Volumes:    []Volume{{Source: "/var/cache/v/data", Target: "/data"}},
		ResolvConf: "/var/cache/r.conf",
	}
}

func TestSpec(t *testing.T) {
	s, err := Spec(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	var ns []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		ns = append(ns, n.Type)
		if n.Type == specs.NetworkNamespace && n.Path != "/run/netns/t1-web" {
			t.Errorf("network namespace %q", n.Path)
		}
	}
	for _, want := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.PIDNamespace, specs.MountNamespace,
		specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.CgroupNamespace} {
		if !slices.Contains(ns, want) {
			t.Errorf("no %s namespace", want)
		}
	}
	if m := s.Linux.UIDMappings; len(m) != 1 || m[0].ContainerID != 0 || m[0].HostID != FirstHostID+RangeSize || m[0].Size != RangeSize {
		t.Errorf("uid mapping %+v", m)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 64<<20 {
		t.Errorf("memory %d, memory+swap %d: want no swap", *r.Memory.Limit, *r.Memory.Swap)
	}
	if *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || *r.Pids.Limit != 128 {
		t.Errorf("cpu %d/%d, pids %d", *r.CPU.Quota, *r.CPU.Period, *r.Pids.Limit)
	}
	if s.Linux.CgroupsPath != "/workloads/t1-web.web.g1" {
		t.Errorf("cgroup %s", s.Linux.CgroupsPath)
	}
	p := s.Process
	if !p.NoNewPrivileges || p.User.UID != 0 {
		t.Errorf("no_new_privs %v, uid %d", p.NoNewPrivileges, p.User.UID)
	}
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_PTRACE"} {
		if slices.Contains(p.Capabilities.Bounding, c) {
			t.Errorf("%s is in the bounding set", c)
		}
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) < 10 {
		t.Errorf("seccomp profile missing or not a deny-by-default list")
	}
	for _, m := range []string{"/proc/kcore", "/proc/keys", "/sys/firmware"} {
		if !slices.Contains(s.Linux.MaskedPaths, m) {
			t.Errorf("%s not masked", m)
		}
	}
	mounts := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		mounts[m.Destination] = m
	}
	if o := mounts["/sys"].Options; !slices.Contains(o, "rro") && !slices.Contains(o, "ro") {
		t.Errorf("/sys is writable: %v", o)
	}
	if mounts["/data"].Source != "/var/cache/v/data" || mounts["/etc/resolv.conf"].Source != "/var/cache/r.conf" {
		t.Errorf("volume or resolv.conf not mounted: %+v", mounts)
	}
	l, err := LayoutOf("/b", s)
	if err != nil || strings.Join(l.Lowers, ":") != "/l/top:/l/base" || l.Disk != 512<<20 || l.HostID != FirstHostID+RangeSize {
		t.Errorf("layout %+v %v", l, err)
	}
}

func TestSpecRefuses(t *testing.T) {
	for name, edit := range map[string]func(*Config){
		"bad id":          func(c *Config) { c.ID = "../x" },
		"no command":      func(c *Config) { c.Args = nil },
		"no layers":       func(c *Config) { c.Layers = nil },
		"no memory limit": func(c *Config) { c.MemoryBytes = 0 },
		"no disk":         func(c *Config) { c.DiskBytes = 0 },
		"node's own ids":  func(c *Config) { c.IDs.HostID = 0 },
		"io weight":       func(c *Config) { c.IOWeight = 20000 },
		"relative volume": func(c *Config) { c.Volumes[0].Target = "data" },
		"missing device":  func(c *Config) { c.Devices = []string{"/dev/nonexistent-gpu"} },
		"not a device":    func(c *Config) { c.Devices = []string{"/etc/hostname"} },
	} {
		c := testConfig()
		edit(&c)
		if _, err := Spec(c); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), c.ID) && name != "bad id" {
			t.Errorf("%s: error %q does not name the container", name, err)
		}
	}
}

func TestRanges(t *testing.T) {
	path := t.TempDir() + "/ranges.json"
	r := OpenRanges(path)
	a, _ := r.Get("t1-web")
	b, _ := r.Get("t2-db")
	if a.HostID != FirstHostID || b.HostID != FirstHostID+RangeSize || a.Size != RangeSize {
		t.Fatalf("ranges %+v %+v", a, b)
	}
	// Kept across a restart (a new table on the same file).
	if again, _ := OpenRanges(path).Get("t1-web"); again != a {
		t.Errorf("after reopening: %+v, want %+v", again, a)
	}
	r.Release("t1-web")
	if c, _ := r.Get("t3-new"); c != a {
		t.Errorf("a freed range is not reused: %+v", c)
	}
}
