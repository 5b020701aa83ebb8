package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeYAMLOverDefaults(t *testing.T) {
	n := Default()
	if err := DecodeYAML(&n, "node.yaml", []byte("farm: 7\nregistrar: test\nuptime: 10s\nwipe: [A, B]\ndisktype: {S1: hdd}\n")); err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Farm, want.Registrar, want.Uptime = 7, "test", Duration(10*time.Second)
	want.Wipe, want.DiskType = []string{"A", "B"}, map[string]string{"S1": "hdd"}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("decoded\n  %+v\nwant\n  %+v", n, want)
	}
	if n.RegistrarURL() != "http://registrar.test4.grid.tf" {
		t.Errorf("RegistrarURL = %q", n.RegistrarURL())
	}
}

// Every bad file is refused with the file, the line and what is allowed.
func TestDecodeYAMLErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"farm: 1\nfarmid: 3\n", `node.yaml:2: unknown key "farmid" at the top level; allowed keys: boot, channel, deployers, disktype, farm, flavour, hostname, iface, location, modules, network, ntp, registrar, registry_mirror, status, upgrade_poll, upgrade_trial, uptime, wipe`},
		{"farm: abc\n", "node.yaml:1: cannot unmarshal !!str `abc` into uint64"},
		{"uptime: soon\n", `node.yaml:1: uptime: bad duration "soon" (want e.g. 10s, 40m, 1h)`},
		{"uptime: -1m\n", `node.yaml:1: uptime: bad duration "-1m": must be positive`},
		{"registrar: ftp://x\n", `node.yaml: registrar "ftp://x": want http(s)://HOST[:PORT] or one of dev, main, qa, test`},
		{"network: wifi\n", `node.yaml: network "wifi": allowed values are dhcp, static:`},
	} {
		n := Default()
		err := DecodeYAML(&n, "node.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeYAML(%q) = %v\nwant it to contain %s", c.yaml, err, c.want)
		}
	}
}

func TestReadImage(t *testing.T) {
	n := Default()
	if err := ReadImage(&n, filepath.Join(t.TempDir(), "missing.yaml")); err != nil || !reflect.DeepEqual(n, Default()) {
		t.Errorf("a missing file: %v, %+v; want the defaults, no error", err, n)
	}
	p := filepath.Join(t.TempDir(), "node.yaml")
	os.WriteFile(p, []byte("# nothing set\n"), 0o644)
	if err := ReadImage(&n, p); err != nil || !reflect.DeepEqual(n, Default()) {
		t.Errorf("an empty file: %v, %+v; want the defaults, no error", err, n)
	}
	os.WriteFile(p, []byte("farm: 9\n"), 0o644)
	if err := ReadImage(&n, p); err != nil || n.Farm != 9 {
		t.Errorf("farm: 9: %v, %+v", err, n)
	}
}

func TestRegistrarURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "",
		"main":                   "https://registrar.prod4.threefold.me",
		"http://10.0.2.2:8080/":  "http://10.0.2.2:8080",
		"http://h:1/api/v1":      "http://h:1",
		" not a registrar ":      "not a registrar", // Validate refuses it; the module says why
		"https://x.example:8443": "https://x.example:8443",
	} {
		if got := (Node{Registrar: in}).RegistrarURL(); got != want {
			t.Errorf("RegistrarURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfLine(t *testing.T) {
	for _, c := range []struct {
		line, key, value string
		ok, err          bool
	}{
		{"farm=1", "farm", "1", true, false},
		{"  gridnode.net.iface = eth0 ", "net.iface", "eth0", true, false},
		{"location=BE,Ghent,51.05,3.72", "location", "BE,Ghent,51.05,3.72", true, false},
		{"registrar=http://h:1/?a=b", "registrar", "http://h:1/?a=b", true, false},
		{"", "", "", false, false},
		{"   ", "", "", false, false},
		{"# farm=7", "", "", false, false},
		{"#location=", "", "", false, false},
		{"bogus", "", "", false, true},
	} {
		k, v, ok, err := ConfLine(c.line)
		if k != c.key || v != c.value || ok != c.ok || (err != nil) != c.err {
			t.Errorf("ConfLine(%q) = %q, %q, %v, %v", c.line, k, v, ok, err)
		}
	}
}

func TestApplyKV(t *testing.T) {
	n := Default()
	if err := ApplyKV(&n, "gridnode.conf", "# farmer's settings\nfarm=42\n\ngridnode.registrar=qa\nwipe=S1, S2\n"); err != nil {
		t.Fatal(err)
	}
	if n.Farm != 42 || n.Registrar != "qa" || !reflect.DeepEqual(n.Wipe, []string{"S1", "S2"}) {
		t.Errorf("applied %+v", n)
	}
	for text, want := range map[string]string{
		"farm=1\nbogus\n":        `gridnode.conf:2: "bogus" is not key=value`,
		"farm=1\n\ncolour=red\n": `gridnode.conf:3: unknown key "colour"; known keys: farm, registrar`,
		"farm=x\n":               `gridnode.conf:1: farm="x": want a farm id`,
		"flavour=weird\n":        `gridnode.conf: flavour "weird": allowed values are node, debug`,
	} {
		n := Default()
		if err := ApplyKV(&n, "gridnode.conf", text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ApplyKV(%q) = %v, want it to contain %s", text, err, want)
		}
	}
}

// A node boots whatever its gridnode.conf says: bad lines are reported with
// file and line, and skipped; the good ones apply.
func TestApplyKVSkippingSkipsBadLines(t *testing.T) {
	n := Default()
	var skipped []string
	ApplyKVSkipping(&n, "gridnode.conf", "# comment\nfarm=42\nbogus\nflavour=weird\nhostname=n1\nuptime=soon\n", func(err error) {
		skipped = append(skipped, err.Error())
	})
	if n.Farm != 42 || n.Hostname != "n1" || n.Flavour != FlavourNode || n.Uptime != Default().Uptime {
		t.Errorf("got %+v", n)
	}
	want := []string{`gridnode.conf:3: "bogus" is not key=value`, `gridnode.conf:4: flavour "weird": allowed values are node, debug`, `gridnode.conf:6: bad duration "soon"`}
	if len(skipped) != len(want) {
		t.Fatalf("skipped %q, want %d lines", skipped, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(skipped[i], w) {
			t.Errorf("skipped[%d] = %q, want %q", i, skipped[i], w)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]StatusAddr{
		"":               {Addr: ":9100", Port: "9100"},
		":9100":          {Addr: ":9100", Port: "9100"},
		"10.0.2.15:9200": {Addr: "10.0.2.15:9200", Port: "9200"},
		"[::1]:9100":     {Addr: "[::1]:9100", Port: "9100"},
		"mgmt:9100":      {Mgmt: true, Addr: ":9100", Port: "9100"},
	} {
		if got, err := ParseStatus(in); err != nil || got != want {
			t.Errorf("ParseStatus(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"mgmt", "9100", "eth0:9100", "node.local:9100", ":70000", ":http"} {
		if _, err := ParseStatus(bad); err == nil {
			t.Errorf("ParseStatus(%q) accepted", bad)
		}
	}
	n := Default()
	n.Status = "mgmt"
	if err := n.Validate(); err == nil || !strings.Contains(err.Error(), "mgmt:PORT") {
		t.Errorf("Validate with status=mgmt: %v", err)
	}
}
