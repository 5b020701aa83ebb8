package spec

import (
	"strings"
	"testing"
)

const good = `version: 1.2.3
kernel:
  package: linux-image-amd64
drivers: [virtio, e1000]
firmware:
  packages: [firmware-linux-free]
files:
  - src: motd
    dst: /etc/motd
    mode: "0644"
cmdline: console=ttyS0
flavour: debug
node:
  farm: 7
  registrar: test
  uptime: 10s
`

func TestParseGood(t *testing.T) {
	s, err := Parse("images/x.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "1.2.3" || s.Kernel.Package != "linux-image-amd64" || len(s.Drivers) != 2 {
		t.Errorf("decoded %+v", s)
	}
	if s.Node.Farm != 7 || s.Node.Uptime.D().Seconds() != 10 || s.Node.Flavour != "debug" {
		t.Errorf("node %+v", s.Node)
	}
	if s.Node.Network != "dhcp" || s.Node.Status != ":9100" {
		t.Errorf("defaults lost: %+v", s.Node)
	}
	if got := s.Path("motd"); got != "images/motd" {
		t.Errorf("Path = %q", got)
	}
}

// Every malformed spec is refused with the file, the line and what is allowed.
func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown top key", "kernel: {package: x}\ndrivers: [a]\ncolour: red\n", `x.yaml:3: unknown key "colour" at the top level; allowed keys: cmdline, drivers, files, firmware, flavour, kernel, node, release_keys, tls_roots, version`},
		{"unknown nested key", "kernel:\n  package: x\n  url: y\ndrivers: [a]\n", `x.yaml:3: unknown key "url" in kernel; allowed keys: deb, dir, oci, package`},
		{"unknown node key", "kernel: {package: x}\ndrivers: [a]\nnode:\n  farmid: 3\n", `x.yaml:4: unknown key "farmid" in node; allowed keys:`},
		{"bad flavour", "kernel: {package: x}\ndrivers: [a]\nflavour: fancy\n", `x.yaml:3: flavour "fancy": allowed values are node, debug`},
		{"bad farm type", "kernel: {package: x}\ndrivers: [a]\nnode:\n  farm: abc\n", `x.yaml:4: cannot unmarshal`},
		{"bad uptime", "kernel: {package: x}\ndrivers: [a]\nnode:\n  uptime: soon\n", `x.yaml:4: node.uptime: bad duration "soon"`},
		{"two kernels", "kernel: {package: x, dir: y}\ndrivers: [a]\n", `x.yaml:1: kernel: set exactly one of package, deb, dir, oci (found 2)`},
		{"no drivers", "kernel: {package: x}\n", `x.yaml: drivers: empty`},
		{"bad network", "kernel: {package: x}\ndrivers: [a]\nnode:\n  network: wifi\n", `x.yaml:3: node: network "wifi": allowed values are dhcp, static:`},
		{"bad registrar", "kernel: {package: x}\ndrivers: [a]\nnode:\n  registrar: ftp://x\n", `x.yaml:3: node: registrar "ftp://x": want http(s)://HOST[:PORT] or one of dev, main, qa, test`},
		{"syntax", "kernel: [\n", `x.yaml:1: did not find expected node content`},
		{"bad release key", "kernel: {package: x}\ndrivers: [a]\nrelease_keys:\n  - ed25519:" + strings.Repeat("A", 43) + "=\n  - ssh-ed25519 AAAA\n", `x.yaml:5: release_keys: release key "ssh-ed25519 AAAA": want ed25519: and the base64 of 32 bytes`},
		{"roots not PEM", "kernel: {package: x}\ndrivers: [a]\ntls_roots:\n  - spec_test.go\n", `x.yaml:4: tls_roots: spec_test.go: no PEM certificate in it (want a PEM file of CA certificates)`},
		{"roots missing", "kernel: {package: x}\ndrivers: [a]\ntls_roots: [nope.pem]\n", `x.yaml:3: tls_roots: nope.pem: open nope.pem: no such file`},
		{"bad mode", "kernel: {package: x}\ndrivers: [a]\nfiles:\n  - {src: a, dst: /a, mode: rwx}\n", `x.yaml:4: files: mode "rwx" is not octal`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatalf("no error; want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, c.want)
			}
		})
	}
}

func TestDefaultSpecsParse(t *testing.T) {
	for _, f := range []string{"../../images/node.yaml", "../../images/debug.yaml"} {
		s, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if s.Kernel.Package == "" || len(s.Drivers) == 0 {
			t.Errorf("%s: %+v", f, s)
		}
	}
}
