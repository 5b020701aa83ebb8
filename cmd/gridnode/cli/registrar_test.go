package cli

import (
	"bytes"
	"strings"
	"testing"
)

// A --trusted-proxy or --sqlite-synchronous that means nothing stops the
// command before it opens anything, saying what is wanted.
func TestRegistrarFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"registrar", "--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "proxy.example"}, `--trusted-proxy "proxy.example": want an address or a CIDR`},
		{[]string{"registrar", "--db", t.TempDir() + "/r.db", "--sqlite-synchronous", "off", "--listen", "127.0.0.1:0"}, `sqlite synchronous "off": want full`},
	} {
		var out, errb bytes.Buffer
		if rc := Run(c.args, strings.NewReader(""), &out, &errb); rc == 0 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("gridnode %s: rc %d, %q; want an error with %q", strings.Join(c.args, " "), rc, errb.String(), c.want)
		}
	}
	for in, want := range map[string]string{"10.1.2.3/8": "10.0.0.0/8", "192.0.2.1": "192.0.2.1/32", "fd00::1": "fd00::1/128"} {
		if p, err := parsePrefix(in); err != nil || p.String() != want {
			t.Errorf("parsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
}
