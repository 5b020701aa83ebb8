package api

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gridnode/gridnode/internal/round"
)

// Resource bounds (a gridnode extension; the reference registrar has none):
// what a registrar accepts as one node's capacity. Each is above what any
// machine that can run a node has, so that no real node is refused, and low
// enough that a grid's totals stay far from what the stores' 64-bit columns
// hold (their sums are computed without overflow anyway).
const (
	// MaxCRU: the most logical CPUs the node's kernel can bring up (Debian's
	// amd64 kernel: CONFIG_MAXSMP, NR_CPUS=8192).
	MaxCRU = 8192
	// MaxMRU: 256 TiB of memory, five times the largest single server sold
	// today (48 TiB, HPE Superdome Flex 280).
	MaxMRU = 256 << 40
	// MaxSRU and MaxHRU: 16 PiB of SSD or HDD capacity each, beyond a
	// storage server with four fully populated 106-bay JBODs of 30 TB disks
	// (about 12.7 PB).
	MaxSRU = 16 << 50
	MaxHRU = 16 << 50
)

// Field bounds: the longest strings and lists a registrar keeps for one
// record. Each is well above what a real node or farmer sends; together
// they bound a record, and so a page of them.
const (
	MaxSerial     = 128 // serial_number: SMBIOS strings are at most 64 characters in practice
	MaxLocation   = 128 // each of country, city, longitude, latitude
	MaxInterfaces = 64  // interfaces of a node
	MaxAddresses  = 256 // addresses of all of a node's interfaces together
	MaxIfaceName  = 64  // an interface name (Linux: 15)
	MaxMAC        = 64  // a hardware address (InfiniBand: 20 bytes, 59 characters)
	MaxAddress    = 64  // an address with its prefix length and zone
	MaxRelays     = 16  // relays of an account
	MaxRelay      = 256 // a relay: a host name (at most 253) or a short URL
	MaxRMBEncKey  = 512 // rmb_enc_key: a public key in hex or base64
	MaxPageSize   = 1000
)

// Check says what is wrong with a node's record as a registrar receives it
// (POST /nodes and PATCH /nodes/:id): the field, its value and the bound it
// breaks. nil when the record is within every bound.
func (u UpdateNode) Check() error {
	switch {
	case u.FarmID == 0:
		return errors.New("farm_id is required")
	case len(u.Interfaces) == 0:
		return errors.New("interfaces must not be empty")
	case strings.TrimSpace(u.SerialNumber) == "":
		return errors.New("serial_number is required")
	}
	if err := u.Resources.Check(); err != nil {
		return err
	}
	if err := text("serial_number", u.SerialNumber, MaxSerial); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"location.country", u.Location.Country}, {"location.city", u.Location.City},
		{"location.longitude", u.Location.Longitude}, {"location.latitude", u.Location.Latitude},
	} {
		if err := text(f.name, f.v, MaxLocation); err != nil {
			return err
		}
	}
	if len(u.Interfaces) > MaxInterfaces {
		return fmt.Errorf("interfaces: %d interfaces, more than the %d a node may report", len(u.Interfaces), MaxInterfaces)
	}
	addrs := 0
	for i, in := range u.Interfaces {
		if err := text(fmt.Sprintf("interfaces[%d].name", i), in.Name, MaxIfaceName); err != nil {
			return err
		}
		if err := text(fmt.Sprintf("interfaces[%d].mac", i), in.Mac, MaxMAC); err != nil {
			return err
		}
		for j, a := range in.IPs {
			if err := text(fmt.Sprintf("interfaces[%d].ips[%d]", i, j), a, MaxAddress); err != nil {
				return err
			}
		}
		if addrs += len(in.IPs); addrs > MaxAddresses {
			return fmt.Errorf("interfaces: more than %d addresses in all", MaxAddresses)
		}
	}
	return nil
}

// Check is UpdateNode.Check of the same record.
func (c CreateNode) Check() error {
	return UpdateNode{FarmID: c.FarmID, Resources: c.Resources, Location: c.Location, Interfaces: c.Interfaces,
		SecureBoot: c.SecureBoot, Virtualized: c.Virtualized, SerialNumber: c.SerialNumber}.Check()
}

// Check says which resource is above its bound (MaxCRU, MaxMRU, MaxSRU,
// MaxHRU), if any.
func (r Resources) Check() error {
	for _, f := range []struct {
		name       string
		v, bound   uint64
		unit, what string
	}{
		{"cru", r.CRU, MaxCRU, "", "logical CPUs"},
		{"mru", r.MRU, MaxMRU, "B", "of memory"},
		{"sru", r.SRU, MaxSRU, "B", "of SSD"},
		{"hru", r.HRU, MaxHRU, "B", "of HDD"},
	} {
		if f.v <= f.bound {
			continue
		}
		bound := fmt.Sprintf("%d %s", f.bound, f.what)
		if f.unit == "B" {
			bound = fmt.Sprintf("%d bytes (%s) %s", f.bound, round.BytesShort(f.bound), f.what)
		}
		return fmt.Errorf("resources.%s: %d is above the bound of %s that a node may report", f.name, f.v, bound)
	}
	return nil
}

// Check says what is wrong with an account's relays and rmb_enc_key.
func (a UpdateAccount) Check() error {
	if len(a.Relays) > MaxRelays {
		return fmt.Errorf("relays: %d relays, more than %d", len(a.Relays), MaxRelays)
	}
	for i, r := range a.Relays {
		if err := text(fmt.Sprintf("relays[%d]", i), r, MaxRelay); err != nil {
			return err
		}
	}
	return text("rmb_enc_key", a.RMBEncKey, MaxRMBEncKey)
}

// Check is UpdateAccount.Check of the account's relays and rmb_enc_key.
func (a CreateAccount) Check() error {
	return UpdateAccount{Relays: a.Relays, RMBEncKey: a.RMBEncKey}.Check()
}

// text checks a string field: at most max bytes of UTF-8 text without
// control characters (a serial number or a city is shown on a farmer's
// terminal and on the dashboard, where an escape sequence must not land).
func text(field, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%s: %d bytes, longer than %d", field, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s: not UTF-8 text", field)
	}
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(v[i:])
		return fmt.Errorf("%s: control character %U at byte %d; want printable text", field, r, i)
	}
	return nil
}

// ParsePublicKey decodes a public key as it travels and refuses any spelling
// but the one PublicKey writes: standard base64 with padding, no line
// breaks, zero padding bits. Go's decoder (like most) also accepts those
// other spellings of the same 32 bytes, and a registrar that kept them as
// sent would give one key several accounts.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, errors.New("invalid public_key: want standard base64 of a 32-byte ed25519 key")
	}
	if PublicKey(k) != s {
		return nil, fmt.Errorf("invalid public_key: not in canonical form (line breaks or non-zero padding bits); send %s", PublicKey(k))
	}
	return k, nil
}

// CanonicalKey is the canonical spelling of a public key given in any
// spelling base64 decoders accept (for lookups), and false when s is no
// 32-byte key at all.
func CanonicalKey(s string) (string, bool) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return "", false
	}
	return PublicKey(k), true
}
