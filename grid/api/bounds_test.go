package api

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
)

func validNode() UpdateNode {
	return UpdateNode{FarmID: 1, SerialNumber: "SN-1",
		Resources:  Resources{CRU: MaxCRU, MRU: MaxMRU, SRU: MaxSRU, HRU: MaxHRU},
		Location:   Location{Country: "Belgium", City: "Gent", Longitude: "3.72", Latitude: "51.05"},
		Interfaces: []Interface{{Name: "eth0", Mac: "52:54:00:12:34:56", IPs: IPs{"10.0.2.15/24", "fe80::1%eth0/64"}}}}
}

// Every bound is refused one above it, with the field and the bound named;
// a record at every bound is accepted.
func TestNodeBounds(t *testing.T) {
	if err := validNode().Check(); err != nil {
		t.Fatalf("a node at every bound: %v", err)
	}
	long := func(n int) string { return strings.Repeat("x", n) }
	for name, c := range map[string]struct {
		change func(*UpdateNode)
		want   string
	}{
		"cru":          {func(u *UpdateNode) { u.Resources.CRU = MaxCRU + 1 }, "resources.cru: 8193 is above the bound of 8192 logical CPUs"},
		"mru":          {func(u *UpdateNode) { u.Resources.MRU = MaxMRU + 1 }, "resources.mru: 281474976710657 is above the bound of 281474976710656 bytes (256 TiB) of memory"},
		"sru":          {func(u *UpdateNode) { u.Resources.SRU = 1<<63 - 1 }, "resources.sru: 9223372036854775807 is above the bound of 18014398509481984 bytes (16 PiB)"},
		"hru":          {func(u *UpdateNode) { u.Resources.HRU = 1<<64 - 1 }, "resources.hru: 18446744073709551615 is above the bound of 18014398509481984 bytes (16 PiB) of HDD"},
		"serial":       {func(u *UpdateNode) { u.SerialNumber = long(MaxSerial + 1) }, "serial_number: 129 bytes, longer than 128"},
		"serial blank": {func(u *UpdateNode) { u.SerialNumber = " " }, "serial_number is required"},
		"escape":       {func(u *UpdateNode) { u.SerialNumber = "SN\x1b[2J" }, "serial_number: control character U+001B at byte 2"},
		"city":         {func(u *UpdateNode) { u.Location.City = long(MaxLocation + 1) }, "location.city: 129 bytes"},
		"latitude":     {func(u *UpdateNode) { u.Location.Latitude = "5\n1" }, "location.latitude: control character U+000A"},
		"not utf-8":    {func(u *UpdateNode) { u.Location.Country = "\xff" }, "location.country: not UTF-8"},
		"no farm":      {func(u *UpdateNode) { u.FarmID = 0 }, "farm_id is required"},
		"no interface": {func(u *UpdateNode) { u.Interfaces = nil }, "interfaces must not be empty"},
		"interfaces": {func(u *UpdateNode) {
			for len(u.Interfaces) <= MaxInterfaces {
				u.Interfaces = append(u.Interfaces, Interface{Name: "e"})
			}
		}, "interfaces: 65 interfaces, more than the 64"},
		"addresses": {func(u *UpdateNode) {
			for i := range 3 {
				u.Interfaces = append(u.Interfaces, Interface{Name: "e", IPs: make(IPs, 100)})
				_ = i
			}
		}, "interfaces: more than 256 addresses in all"},
		"iface name": {func(u *UpdateNode) { u.Interfaces[0].Name = long(MaxIfaceName + 1) }, "interfaces[0].name: 65 bytes"},
		"mac":        {func(u *UpdateNode) { u.Interfaces[0].Mac = long(MaxMAC + 1) }, "interfaces[0].mac: 65 bytes"},
		"address":    {func(u *UpdateNode) { u.Interfaces[0].IPs[1] = long(MaxAddress + 1) }, "interfaces[0].ips[1]: 65 bytes"},
	} {
		u := validNode()
		u.Interfaces = append([]Interface(nil), u.Interfaces...)
		u.Interfaces[0].IPs = append(IPs(nil), u.Interfaces[0].IPs...)
		c.change(&u)
		err := u.Check()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Check = %v; want %q", name, err, c.want)
		}
		cn := CreateNode{TwinID: 1, FarmID: u.FarmID, Resources: u.Resources, Location: u.Location, Interfaces: u.Interfaces, SerialNumber: u.SerialNumber}
		if cerr := cn.Check(); cerr == nil || cerr.Error() != err.Error() {
			t.Errorf("%s: CreateNode.Check = %v; want %v", name, cerr, err)
		}
	}
}

func TestAccountBounds(t *testing.T) {
	ok := UpdateAccount{Relays: []string{"relay.dev.grid.tf", strings.Repeat("r", MaxRelay)}, RMBEncKey: strings.Repeat("k", MaxRMBEncKey)}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for want, a := range map[string]UpdateAccount{
		"relays: 17 relays, more than 16":     {Relays: make([]string, MaxRelays+1)},
		"relays[1]: 257 bytes":                {Relays: []string{"a", strings.Repeat("r", MaxRelay+1)}},
		"rmb_enc_key: 513 bytes":              {RMBEncKey: strings.Repeat("k", MaxRMBEncKey+1)},
		"relays[0]: control character U+0007": {Relays: []string{"\a"}},
	} {
		if err := a.Check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v; want %q", err, want)
		}
		if err := (CreateAccount{Relays: a.Relays, RMBEncKey: a.RMBEncKey}).Check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CreateAccount.Check = %v; want %q", err, want)
		}
	}
}

// Other spellings of one key, which Go's base64 decoder (and others)
// accept: each decodes to the same 32 bytes, and only the canonical one is
// taken.
func TestParsePublicKeyCanonical(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	pub[31] &^= 3 // so that the canonical form ends in a character with free padding bits
	canon := PublicKey(pub)
	k, err := ParsePublicKey(canon)
	if err != nil || !bytes.Equal(k, pub) {
		t.Fatalf("ParsePublicKey(canonical) = %x, %v", k, err)
	}
	// The 43rd character carries 4 bits of the key and 2 padding bits.
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", canon[42])
	padded := canon[:42] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last|1]) + "="
	for name, s := range map[string]string{
		"line break":       canon[:20] + "\n" + canon[20:],
		"CRLF at the end":  canon + "\r\n",
		"padding bits set": padded,
	} {
		if lenient, err := base64.StdEncoding.DecodeString(s); err != nil || !bytes.Equal(lenient, pub) {
			t.Fatalf("%s: the crafted spelling %q does not decode to the key (%v): the test proves nothing", name, s, err)
		}
		if _, err := ParsePublicKey(s); err == nil || !strings.Contains(err.Error(), "canonical") {
			t.Errorf("%s: ParsePublicKey(%q) = %v; want refused as not canonical", name, s, err)
		}
		if c, ok := CanonicalKey(s); !ok || c != canon {
			t.Errorf("%s: CanonicalKey = %q, %v; want %q", name, c, ok, canon)
		}
	}
	for _, s := range []string{"", "AAAA", canon[:43], "!" + canon[1:]} {
		if _, err := ParsePublicKey(s); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", s)
		}
	}
}
