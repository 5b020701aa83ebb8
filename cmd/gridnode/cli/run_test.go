package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunRejectsBadArgumentsBeforeStartingQEMU(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", t.TempDir()}, "run gridnode build"},
		{[]string{"run", "--iso", "a.iso", "--usb", "b.img"}, "choose one of"},
		{[]string{"run", "--iso", "a.iso", "--registrar", "http://10.0.2.2:8080"}, "direct boot only"},
		{[]string{"run", "--disk", "10Q"}, "--disk"},
		{[]string{"run", "--forward", "x:1"}, "GUEST[:HOST]"},
	} {
		var out, errb bytes.Buffer
		if code := Run(tc.args, strings.NewReader(""), &out, &errb); code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("gridnode %s: code %d, stderr %q; want failure mentioning %q", strings.Join(tc.args, " "), code, errb.String(), tc.want)
		}
	}
}

func TestParseForward(t *testing.T) {
	f, err := parseForward("9100:19100")
	if err != nil || f.Guest != 9100 || f.Host != 19100 {
		t.Errorf("parseForward(9100:19100) = %+v, %v", f, err)
	}
	f, err = parseForward("9100")
	if err != nil || f.Guest != 9100 || f.Host != 0 {
		t.Errorf("parseForward(9100) = %+v, %v", f, err)
	}
	for _, bad := range []string{"", "0", "70000", "1:x"} {
		if _, err := parseForward(bad); err == nil {
			t.Errorf("parseForward(%q) succeeded", bad)
		}
	}
}
