// Package printable makes text from outside the node safe to show on a
// terminal. A registrar's error message, a DHCP server's domain, a
// firmware's DMI strings all reach the serial console and tty1; a
// terminal acts on some characters instead of showing them — ESC and CSI
// start sequences that clear the screen, move the cursor, retitle the
// window or (on some terminals) answer back into the input; a carriage
// return or a newline lets a message forge a line of the status block;
// bidirectional overrides make text read other than it is. String writes
// every such character as a visible escape, so what a person reads is
// what was sent, and nothing else happens.
package printable

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with each character a terminal could act on written as
// an escape: C0 and C1 control characters (newline, carriage return, tab,
// ESC, BEL, backspace, CSI …), DEL, Unicode format characters (bidi
// overrides and isolates, zero-width characters) and line or paragraph
// separators become \xHH or \uHHHH, and each byte that is not UTF-8
// becomes \xHH (a raw 0x9B is CSI to an 8-bit terminal). Everything else
// is kept as it is: printable text comes back unchanged.
func String(s string) string {
	if safe(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case acts(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case acts(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// safe says whether s has nothing String would change (the common case:
// no allocation).
func safe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		} else if c >= 0x80 {
			return safeUTF8(s[i:])
		}
	}
	return true
}

func safeUTF8(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || acts(r) {
			return false // RuneError: invalid, or a real U+FFFD (kept by String all the same)
		}
	}
	return true
}

// acts says whether a terminal may act on r rather than show it.
func acts(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}
