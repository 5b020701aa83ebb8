package printable

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// hostile are texts a registrar, a DHCP server or a firmware could send.
var hostile = map[string]string{
	"clear screen":   "farm not found\x1b[2J\x1b[H",
	"window title":   "\x1b]0;pwned\x07",
	"C1 CSI (UTF-8)": "bad\u009b31mred",
	"raw CSI byte":   "bad\x9b31mred",
	"forged line":    "nope\nstatus: registrar=registered twin=1 node=1",
	"overwrite":      "registrar down\rregistrar ok  ",
	"backspace":      "error\b\b\b\b\bfine!",
	"bidi override":  "gn-\u202efdp.exe",
	"zero width":     "ma\u200bin",
	"line separator": "a\u2028b",
	"DEL and NUL":    "a\x7fb\x00c",
	"broken UTF-8":   "\xff\xfe\xc3",
}

func TestHostileTextIsInert(t *testing.T) {
	for name, in := range hostile {
		out := String(in)
		if !utf8.ValidString(out) {
			t.Errorf("%s: %q is not UTF-8", name, out)
		}
		for i, r := range out {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
				t.Errorf("%s: %q keeps %U at %d", name, out, r, i)
			}
		}
		if out == in {
			t.Errorf("%s: %q came back unchanged", name, in)
		}
	}
	for in, want := range map[string]string{
		"farm not found\x1b[2J": `farm not found\x1b[2J`,
		"nope\nstatus: ok":      `nope\x0astatus: ok`,
		"bad\x9b31m":            `bad\x9b31m`,
		"bad\u009b31m":          `bad\x9b31m`,
		"gn-\u202efdp":          `gn-\u202efdp`,
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrintableTextUnchanged(t *testing.T) {
	for _, s := range []string{"", "registrar http://10.0.2.2:8080 answered 404 (farm not found)", "Zürich — 東京 ✓", "a\\x1b stays as typed"} {
		if got := String(s); got != s {
			t.Errorf("String(%q) = %q, want it unchanged", s, got)
		}
	}
}

// FuzzString: whatever the input, the output is UTF-8 with nothing a
// terminal acts on, and printable input comes back unchanged.
func FuzzString(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Add("plain text")
	f.Fuzz(func(t *testing.T, in string) {
		out := String(in)
		if !utf8.ValidString(out) {
			t.Fatalf("String(%q) = %q: not UTF-8", in, out)
		}
		for _, r := range out {
			if acts(r) {
				t.Fatalf("String(%q) = %q keeps %U", in, out, r)
			}
		}
		if utf8.ValidString(in) && !strings.ContainsFunc(in, func(r rune) bool { return acts(r) || r == utf8.RuneError }) && out != in {
			t.Fatalf("String(%q) = %q changed printable text", in, out)
		}
	})
}
