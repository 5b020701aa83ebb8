package strictyaml

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// duration is a TextUnmarshaler that refuses what time.ParseDuration does.
type duration time.Duration

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (want e.g. 40m)", b)
	}
	*d = duration(v)
	return nil
}

type Common struct {
	Name string `yaml:"name"`
}

type port struct {
	Number int    `yaml:"number"`
	Proto  string `yaml:"proto,omitempty"`
}

type doc struct {
	Common  `yaml:",inline"`
	Image   string          `yaml:"image"`
	Every   duration        `yaml:"every,omitempty"`
	Ports   []port          `yaml:"ports,omitempty"`
	Env     map[string]port `yaml:"env,omitempty"`
	Labels  map[string]string
	Limits  *struct{ CPU int } `yaml:"limits,omitempty"`
	Skipped string             `yaml:"-"`
	//lint:ignore U1000 an unexported field is no key: TestErrors checks it
	private string
}

func TestDecodes(t *testing.T) {
	src := "name: web\nimage: nginx\nevery: 10s\nports:\n  - {number: 80}\n  - number: 443\n    proto: tcp\nenv:\n  a: {number: 1}\nlabels: {x: y}\nlimits: {cpu: 2}\n"
	d := doc{Image: "default", Skipped: "kept"}
	lines, err := DecodeLines("d.yaml", []byte(src), &d)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "web" || d.Image != "nginx" || time.Duration(d.Every) != 10*time.Second || len(d.Ports) != 2 || d.Ports[1].Proto != "tcp" ||
		d.Env["a"].Number != 1 || d.Labels["x"] != "y" || d.Limits == nil || d.Limits.CPU != 2 || d.Skipped != "kept" {
		t.Errorf("decoded %+v", d)
	}
	for path, want := range map[string]int{"name": 1, "image": 2, "ports": 4, "ports[1]": 6, "ports[1].proto": 7, "env.a": 9, "env.a.number": 9, "limits.cpu": 11} {
		if got, ok := lines.Line(path); !ok || got != want {
			t.Errorf("line of %s = %d, %v; want %d", path, got, ok, want)
		}
	}
	if got := lines.Where("nope"); got != "d.yaml" {
		t.Errorf("Where of a missing key = %q, want the file alone", got)
	}
	if err := lines.Errorf("ports[1].proto", "proto %q: want tcp or udp", "x"); err.Error() != `d.yaml:7: proto "x": want tcp or udp` {
		t.Errorf("Errorf = %v", err)
	}
}

// Unset keys keep what the value held: callers fill in defaults first.
func TestKeepsDefaults(t *testing.T) {
	d := doc{Image: "default", Every: duration(time.Minute)}
	if err := Decode("d.yaml", []byte("name: x\nevery:\n"), &d); err != nil {
		t.Fatal(err)
	}
	if d.Image != "default" || time.Duration(d.Every) != time.Minute || d.Name != "x" {
		t.Errorf("decoded %+v; want image and every kept", d)
	}
}

// Every malformed document is refused with the file, the line and what is
// allowed.
func TestErrors(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown top key", "name: a\ncolour: red\n", `d.yaml:2: unknown key "colour" at the top level; allowed keys: env, every, image, labels, limits, name, ports`},
		{"unknown key in a list item", "ports:\n  - number: 1\n    protocol: tcp\n", `d.yaml:3: unknown key "protocol" in ports[0]; allowed keys: number, proto`},
		{"unknown key in a map value", "env:\n  a:\n    nmber: 1\n", `d.yaml:3: unknown key "nmber" in env.a; allowed keys: number, proto`},
		{"unknown key under a pointer", "limits:\n  memory: 1\n", `d.yaml:2: unknown key "memory" in limits; allowed keys: cpu`},
		{"a skipped field is no key", "skipped: x\n", `d.yaml:1: unknown key "skipped"`},
		{"an unexported field is no key", "private: x\n", `d.yaml:1: unknown key "private"`},
		{"text value refused", "name: a\nevery: soon\n", `d.yaml:2: every: bad duration "soon" (want e.g. 40m)`},
		{"text value not a scalar", "every: [1s]\n", `d.yaml:1: every: want a single value, not a list`},
		{"struct not a mapping", "limits: 3\n", `d.yaml:1: limits must be a mapping of keys, not a single value`},
		{"wrong type", "ports:\n  - number: eighty\n", "d.yaml:2: cannot unmarshal !!str `eighty` into int"},
		{"syntax", "name: [\n", `d.yaml:1: did not find expected node content`},
		{"duplicate key", "name: a\nname: b\n", `d.yaml:2: mapping key "name" already defined at line 1`},
		{"through an alias", "env:\n  a: &p {number: 1, bad: 2}\n  b: *p\n", `d.yaml:2: unknown key "bad" in env.a`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var d doc
			err := Decode("d.yaml", []byte(c.yaml), &d)
			if err == nil {
				t.Fatalf("no error; want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, c.want)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	var d doc
	for _, src := range []string{"", "# only a comment\n", "\n\n"} {
		err := Decode("d.yaml", []byte(src), &d)
		if !errors.Is(err, ErrEmpty) || !strings.HasPrefix(err.Error(), "d.yaml: ") {
			t.Errorf("Decode(%q) = %v; want ErrEmpty naming the file", src, err)
		}
	}
}

func TestNeedsAPointer(t *testing.T) {
	if err := Decode("d.yaml", []byte("name: a\n"), doc{}); err == nil {
		t.Error("Decode into a value, not a pointer: no error")
	}
}

// Fuzz: whatever the bytes, Decode returns (no panic), and an error always
// starts with the file's name.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"name: a\n", "ports:\n  - {number: 1}\n", "env: {a: {number: 2}}\n", "every: 5s\n", "&a [*a]", "limits: ~\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d doc
		if err := Decode("f.yaml", b, &d); err != nil && !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Errorf("error %q does not name the file", err)
		}
	})
}
