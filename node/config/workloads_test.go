package config

import (
	"slices"
	"strings"
	"testing"
)

// TestWorkloadKeys: gridnode.deployers and gridnode.registry_mirror come
// from the image's node section, gridnode.conf and the kernel command
// line, later sources winning, and bad values are refused by name.
func TestWorkloadKeys(t *testing.T) {
	n := Default()
	if err := DecodeYAML(&n, "node.yaml", []byte("farm: 1\nregistrar: main\ndeployers: [\"7\"]\nregistry_mirror: 10.0.2.2:5001\n")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n.Deployers, []string{"7"}) || n.RegistryMirror != "10.0.2.2:5001" {
		t.Fatalf("from YAML: %+v", n)
	}
	if err := ApplyKV(&n, "gridnode.conf", "deployers=7, 9\nregistry_mirror=http://mirror.lan:5000\n"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n.Deployers, []string{"7", "9"}) || n.RegistryMirror != "http://mirror.lan:5000" {
		t.Fatalf("from gridnode.conf: %+v", n)
	}
	if w := ApplyCmdline(&n, "quiet gridnode.deployers=any gridnode.registry_mirror=10.0.2.2:5002"); len(w) != 0 {
		t.Fatal(w)
	}
	if !slices.Equal(n.Deployers, []string{"any"}) || n.RegistryMirror != "10.0.2.2:5002" {
		t.Fatalf("from the command line: %+v", n)
	}
	for kv, want := range map[string]string{
		"deployers=7,bob":                   `deployers "bob": want twin ids (TWIN,TWIN) or any`,
		"registry_mirror=https://m.lan":     `registry_mirror "https://m.lan": want HOST[:PORT], or http://HOST[:PORT] for a mirror without TLS`,
		"registry_mirror=m.lan/some/prefix": `registry_mirror "m.lan/some/prefix"`,
	} {
		m := Default()
		err := ApplyKV(&m, "gridnode.conf", kv)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", kv, err, want)
		}
	}
}
