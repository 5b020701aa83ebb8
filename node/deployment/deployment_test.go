package deployment

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestParseExample: the example file decodes to the numbers it
// says, with defaults filled in only where it says nothing.
func TestParseExample(t *testing.T) {
	d, err := Load("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Deployment{Name: "web", Workloads: []Workload{{
		Name:    "web",
		Image:   "10.0.2.2:5000/web:1",
		Command: []string{"/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"},
		Env:     map[string]string{"GREETING": "hello"},
		CPU:     500,
		Memory:  64 << 20,
		PIDs:    128,
		Disk:    512 << 20,
		Ports:   []Port{{Node: 8080, Container: 8080, Protocol: "tcp"}},
		Volumes: []Volume{{Name: "data", Path: "/data", Size: 1 << 30}},
		Restart: RestartAlways,
	}}}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("Load = %+v\nwant %+v", d, want)
	}
	need := d.Needs()
	if need.MilliCPU != 500 || need.Memory != 64<<20 || need.Disk != 512<<20+1<<30 || need.GPUs != 0 {
		t.Fatalf("Needs = %+v; want 500 mCPU, 64 MiB, 1.5 GiB disk (layer and volume)", need)
	}

	m, err := Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w := m.Workloads[0]
	if w.CPU != DefaultCPU || w.Memory != DefaultMemory || w.Disk != DefaultDisk || w.PIDs != DefaultPIDs || w.Restart != DefaultRestart {
		t.Fatalf("defaults not filled in: %+v", w)
	}
	if !Pinned(w.Image) || Pinned(d.Workloads[0].Image) {
		t.Fatal("Pinned: a digest reference is pinned, a tag is not")
	}
}

// TestCanonical: the wire form is stable bytes in base units, and the node
// decodes it back to the same deployment.
func TestCanonical(t *testing.T) {
	d, err := Load("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"web","workloads":[{"name":"web","image":"10.0.2.2:5000/web:1",` +
		`"command":["/bin/busybox","httpd","-f","-p","8080","-h","/www"],"env":{"GREETING":"hello"},` +
		`"millicpu":500,"memory_bytes":67108864,"pids":128,"disk_bytes":536870912,` +
		`"ports":[{"node":8080,"container":8080,"protocol":"tcp"}],` +
		`"volumes":[{"name":"data","path":"/data","size_bytes":1073741824}],"restart":"always"}]}`
	if string(b) != want {
		t.Fatalf("Canonical =\n%s\nwant\n%s", b, want)
	}
	back, err := DecodeJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, d) {
		t.Fatalf("DecodeJSON(Canonical) = %+v\nwant %+v", back, d)
	}
	// A wire form without defaults gets them from the node too.
	short, err := DecodeJSON([]byte(`{"name":"a","workloads":[{"name":"b","image":"r.example/x:1"}]}`))
	if err != nil || short.Workloads[0].Memory != DefaultMemory {
		t.Fatalf("DecodeJSON of a short form = %+v, %v", short, err)
	}
	for _, bad := range []string{
		`{"name":"a","workloads":[{"name":"b","image":"r/x:1"}],"colour":1}`,
		`{"name":"a","workloads":[{"name":"b","image":"r/x:1"}]} {}`,
		`{"name":"a","workloads":[{"name":"b","image":"r/x:1","restart":"sometimes"}]}`,
		`{"name":"a","workloads":[{"name":"b","image":"r/x:1","millicpu":-1}]}`,
	} {
		if _, err := DecodeJSON([]byte(bad)); err == nil {
			t.Errorf("DecodeJSON(%s) accepted it", bad)
		}
	}
}

// TestParseErrors: every bad file is refused with its file, the line of
// the offending key, and what is allowed.
func TestParseErrors(t *testing.T) {
	head := "name: web\nworkloads:\n  - name: web\n    image: r.example/web:1\n"
	for _, c := range []struct{ yaml, want string }{
		{"", "d.yaml: empty document"},
		{"name: web\ncolour: red\n", `d.yaml:2: unknown key "colour" at the top level; allowed keys: credentials, name, workloads`},
		{head + "    memroy: 64Mi\n", `d.yaml:5: unknown key "memroy" in workloads[0]; allowed keys: command, cpu, disk, env, gpus, image, memory, name, pids, ports, restart, volumes`},
		{head + "    memory: 64Mb\n", `d.yaml:5: "64Mb" is not a size: want e.g. 64Mi, 1Gi, 500M or a number of bytes`},
		{head + "    cpu: half\n", `d.yaml:5: "half" is not a CPU amount: want a number of CPUs with at most 3 decimals (0.5, 2) or millicores (500m)`},
		{head + "    ports: [\"8080:80/sctp\"]\n", `d.yaml:5: "8080:80/sctp": protocol "sctp": allowed values are tcp, udp`},
		{head + "    ports: [8080:99999]\n", `d.yaml:5: "8080:99999" is not a port: want NODE:CONTAINER[/tcp|/udp], e.g. 8080:80/tcp`},
		{head + "    restart: sometimes\n", `d.yaml:5: workloads[0].restart: "sometimes": allowed values are always, on-failure, never`},
		{head + "    volumes: [{name: data, path: data, size: 1Gi}]\n", `d.yaml:5: workloads[0].volumes[0].path: "data": want an absolute, clean path other than /, e.g. /data`},
		{head + "    volumes: [{name: data, path: /data}]\n", `d.yaml:5: workloads[0].volumes[0].size: want a size between 1 and 1Pi, e.g. 1Gi`},
		{head + "    volumes: [{name: data, path: /data, size: 1Gi, ro: true}]\n", `d.yaml:5: unknown key "ro" in workloads[0].volumes[0]; allowed keys: name, path, size`},
		{head + "    env: {1X: y}\n", `d.yaml:5: workloads[0].env: variable "1X": want letters, digits and _, not starting with a digit`},
		{head + "    env: {X: [1, 2]}\n", `d.yaml:5: workloads[0].env.X: want a single value, not a list`},
		{head + "    command: /bin/sh\n", `d.yaml:5: workloads[0].command: want a list, not a single value`},
		{head + "    memory: 1Mi\n", `d.yaml:5: workloads[0].memory: 1Mi: want between 4Mi and 1Pi`},
		{head + "    gpus: -1\n", `d.yaml:5: workloads[0].gpus: -1: want 0 to 64`},
		{head + "  - name: web\n    image: r.example/other:1\n", `d.yaml:5: workloads[1].name: "web": another workload of this deployment has this name`},
		{head + "    ports: [\"80:80\"]\n  - name: two\n    image: r.example/x:1\n    ports: [\"80:81\"]\n", `d.yaml:8: workloads[1].ports[0]: node port 80/tcp is published already by workloads[0].ports[0]`},
		{"name: Web\nworkloads: []\n", `d.yaml:1: name: "Web": use lower-case letters, digits and - (not at either end), at most 32`},
		{"name: web\n", `d.yaml:1: workloads: missing: a deployment needs at least one workload`},
		{"name: web\nworkloads:\n  - name: w\n    image: \"UPPER CASE\"\n", `d.yaml:4: workloads[0].image: "UPPER CASE" is not an image reference: want REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST`},
		{"name: web\nworkloads:\n  - name: w\n", `d.yaml:3: workloads[0].image: missing: name the image, e.g. 10.0.2.2:5000/web:1 or REGISTRY/REPO@sha256:DIGEST`},
		{head + "credentials: [{registry: \"http://r\", username: u, password: p}]\n", `d.yaml:5: credentials[0].registry: "http://r": want a registry host[:port] as in the image references, e.g. ghcr.io or 10.0.2.2:5000`},
		{head + "credentials: [{registry: r.example, username: u}]\n", `d.yaml:5: credentials[0]: want both username and password (or an access token as the password)`},
		{"name: web\nname: again\n", `d.yaml:2: mapping key "name" already defined at line 1`},
		{"name: web\n---\nname: two\n", `d.yaml:2: a second YAML document: a file holds one`},
		{"name: [web\n", `d.yaml:1: did not find expected ',' or ']'`},
		{"workloads: {name: x}\n", `d.yaml:1: workloads: want a list, not a mapping`},
		{"workloads:\n  - x\n", `d.yaml:2: workloads[0] must be a mapping of keys, not a single value`},
	} {
		_, err := Parse("d.yaml", []byte(c.yaml))
		if err == nil {
			t.Errorf("Parse(%q) accepted it; want %q", c.yaml, c.want)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("Parse(%q)\n got: %v\nwant: %s", c.yaml, err, c.want)
		}
	}
}

// TestQuantities: sizes, CPU amounts and ports read and write back.
func TestQuantities(t *testing.T) {
	for in, want := range map[string]Size{"64Mi": 64 << 20, "1Gi": 1 << 30, "500M": 500e6, "1.5Gi": 3 << 29, "1024": 1024, "1k": 1000, "0.5Ki": 512, "1.0001K": 1001} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1Mb", "-1", "1e9", "2Pi", "99999999999999999999", "1 Gi "} {
		if got, err := ParseSize(bad); err == nil && bad != "1 Gi " {
			t.Errorf("ParseSize(%q) = %d; want an error", bad, got)
		}
	}
	for in, want := range map[Size]string{64 << 20: "64Mi", 1536 << 20: "1536Mi", 1000: "1000", 1 << 30: "1Gi"} {
		if got := in.String(); got != want {
			t.Errorf("Size(%d).String() = %q; want %q", uint64(in), got, want)
		}
	}
	for in, want := range map[string]MilliCPU{"0.5": 500, "2": 2000, "0.125": 125, "250m": 250, "1.05": 1050} {
		got, err := ParseCPU(in)
		if err != nil || got != want {
			t.Errorf("ParseCPU(%q) = %d, %v; want %d", in, got, err, want)
		}
		if back, _ := ParseCPU(got.String()); back != got {
			t.Errorf("ParseCPU(%q.String()) = %d", got, back)
		}
	}
	for _, bad := range []string{"0.1234", "-1", "1/2", "", "m"} {
		if _, err := ParseCPU(bad); err == nil {
			t.Errorf("ParseCPU(%q) accepted it", bad)
		}
	}
	for in, want := range map[string]Port{"8080:80/tcp": {8080, 80, "tcp"}, "8080:80": {8080, 80, "tcp"}, "53/udp": {53, 53, "udp"}, "9": {9, 9, "tcp"}} {
		got, err := ParsePort(in)
		if err != nil || got != want {
			t.Errorf("ParsePort(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"0:80", "80:0", "80:80/icmp", "a:b", "65536:1", ":80"} {
		if _, err := ParsePort(bad); err == nil {
			t.Errorf("ParsePort(%q) accepted it", bad)
		}
	}
}

// TestExamplesInREADME: every deployment file shown in README.md's
// Deployments section parses.
func TestExamplesInREADME(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Deployments\n")
	if !ok {
		t.Fatal("README.md has no Deployments section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	n := 0
	for _, block := range strings.Split(sec, "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if !strings.HasPrefix(block, "name:") {
			continue
		}
		n++
		if _, err := Parse("README.md", []byte(block)); err != nil {
			t.Errorf("README example %d: %v", n, err)
		}
	}
	if n == 0 {
		t.Fatal("no deployment file example in README's Deployments section")
	}
}
