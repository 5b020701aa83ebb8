package modalias

import (
	"reflect"
	"strings"
	"testing"
)

func TestFnmatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"virtio:d00000001v*", "virtio:d00000001v00001AF4", true},
		{"virtio:d00000001v*", "virtio:d00000002v00001AF4", false},
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", true},
		{"pci:v00008086d0000100Esv*sd*bc*sc*i*", "pci:v00008086d0000100Fsv00001AF4sd00001100bc02sc00i00", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*", "", true},
		{"a*", "a/b", true}, // no FNM_PATHNAME
		{"x[0-9]y", "x5y", true},
		{"x[0-9]y", "xay", false},
		{"x[!0-9]y", "xay", true},
		{"x[^0-9]y", "x5y", false},
		{"x[]]y", "x]y", true},
		{"x[ab", "x[ab", true}, // unterminated class: literal
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{"*bc*sc*", "bc01sc02", true},
		{"acpi*:PNP0501:*", "acpi:PNP0501:", true},
		{"*:PNP0501:*", "acpi:PNP0500:", false},
	} {
		if got := fnmatch(c.p, c.s); got != c.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

func TestAliasesMatch(t *testing.T) {
	a, err := ParseAliases(strings.NewReader(aliasFile))
	if err != nil {
		t.Fatal(err)
	}
	for alias, want := range map[string][]string{
		"virtio:d00000001v00001AF4":                             {"virtio_net"},
		"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00": {"virtio_pci"},
		"pci:v00008086d00007010sv00000000sd00000000bc01sc01i80": {"ata_generic", "ata_piix"}, // every match, as modprobe
		"fs-vfat":        {"vfat"},
		"acpi:PNP0501:":  {"8250_pnp"},
		"usb:v1234p5678": nil,
	} {
		if got := a.Match(alias); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%q) = %v, want %v", alias, got, want)
		}
	}
}

func TestParseSoftdeps(t *testing.T) {
	sd, err := ParseSoftdeps(strings.NewReader("# comment\nsoftdep crc32c pre: crc32c-intel post: x y\nsoftdep ext4 pre: crc32c\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Softdeps{"crc32c": {Pre: []string{"crc32c-intel"}, Post: []string{"x", "y"}}, "ext4": {Pre: []string{"crc32c"}}}
	if !reflect.DeepEqual(sd, want) {
		t.Errorf("got %+v", sd)
	}
}

const aliasFile = `# Aliases extracted from modules themselves.
alias virtio:d00000001v* virtio_net
alias virtio:d00000002v* virtio_blk
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias pci:v00008086d00007010sv*sd*bc*sc*i* ata_piix
alias pci:v*d*sv*sd*bc01sc01i* ata_generic
alias fs-vfat vfat
alias fs-iso9660 isofs
alias acpi*:PNP0501:* 8250_pnp
`
