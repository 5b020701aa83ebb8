package cli

import (
	"bytes"
	"strings"
	"testing"
)

// Every command of the list is reachable, once, under its name.
func TestCommandsAreListedOnce(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := Run([]string{"--help"}, strings.NewReader(""), &out, &errb); rc != 0 {
		t.Fatalf("gridnode --help: rc %d: %s", rc, errb.String())
	}
	seen := map[string]bool{}
	for _, c := range commands {
		name := c().Name()
		if seen[name] {
			t.Errorf("command %s is listed twice", name)
		}
		seen[name] = true
		if !strings.Contains(out.String(), "\n  "+name+" ") {
			t.Errorf("gridnode --help does not list %s:\n%s", name, out.String())
		}
	}
	for _, name := range []string{"build", "run", "image", "netboot", "registrar", "farm", "simulate", "release", "version"} {
		if !seen[name] {
			t.Errorf("command %s is not in the list", name)
		}
	}
}
