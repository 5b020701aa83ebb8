package api

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"unicode"

	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// gridnode's extensions of the registrar API (shared/registrar-api.md,
// "gridnode's extensions"). Each is optional on the wire: a node sends
// them to any registrar and loses nothing where they are ignored (the
// reference registrar drops unknown JSON fields), and a reference-shaped
// client never sees a required field it does not know.
//
// Uptime body (POST /nodes/:node_id/uptime), OSState's fields beside
// "uptime" and "timestamp":
//
//	{"uptime": 120, "timestamp": 1767225600,
//	 "os_version": "1.2.0", "channel": "stable",
//	 "rolled_back": true, "rolled_back_from": "1.3.0"}
//
// Node record (POST and PATCH /nodes send "gpus"; GET /nodes and
// /nodes/:id answer them and the OSState the node last reported):
//
//	"gpus": [{"address": "0000:01:00.0", "vendor": "NVIDIA Corporation",
//	          "model": "TU104GL [Tesla T4]", "vendor_id": "10de",
//	          "device_id": "1eb8", "class": "030200", "iommu_group": "14",
//	          "driver": ""}],
//	"os_version": "1.2.0", "channel": "stable", "rolled_back": true,
//	"rolled_back_from": "1.3.0", "os_version_since": "2026-01-01T00:00:00Z"
//
// Release channels: channel.go.

// OSState is what a node says of the release it runs, with each uptime
// report. Empty fields are left out of the JSON; a report without
// os_version leaves what the registrar knows of the node unchanged.
type OSState struct {
	// OSVersion is the version of the release the node runs (a release
	// version: doc.ValidVersion).
	OSVersion string `json:"os_version,omitempty"`
	// Channel is the release channel the node follows ("" when it follows
	// none, or does not say): the registrar counts the node in that
	// channel's rollout (a node that names none in every channel's).
	Channel string `json:"channel,omitempty"`
	// RolledBack says the node runs OSVersion because its trial boot of
	// RolledBackFrom failed; both are sent together. The registrar keeps
	// the rollback until the node reports another OSVersion, so a node may
	// send it once or with every report.
	RolledBack     bool   `json:"rolled_back,omitempty"`
	RolledBackFrom string `json:"rolled_back_from,omitempty"`
}

// Check reports what is wrong with an OSState, naming the field.
func (o OSState) Check() error {
	switch {
	case o.OSVersion != "" && !doc.ValidVersion(o.OSVersion):
		return fmt.Errorf("invalid os_version %q: want 1 to 64 letters, digits and . _ + -", clip(o.OSVersion))
	case o.Channel != "" && !doc.ValidChannelName(o.Channel):
		return fmt.Errorf("invalid channel %q: want lower-case letters, digits and -, up to 32", clip(o.Channel))
	case o.Channel != "" && o.OSVersion == "":
		return errors.New("channel without os_version: send the version the node runs with it")
	case o.RolledBack != (o.RolledBackFrom != ""):
		return errors.New("rolled_back and rolled_back_from go together: rolled_back true with the version whose trial failed")
	case o.RolledBack && o.OSVersion == "":
		return errors.New("rolled_back without os_version: send the version the node runs now")
	case o.RolledBack && !doc.ValidVersion(o.RolledBackFrom):
		return fmt.Errorf("invalid rolled_back_from %q: want 1 to 64 letters, digits and . _ + -", clip(o.RolledBackFrom))
	case o.RolledBack && o.RolledBackFrom == o.OSVersion:
		return errors.New("rolled_back_from is the version the node runs: a node rolls back to another version")
	}
	return nil
}

// GPU is one GPU of a node record: the node's hardware fact, field for
// field (node/fact.GPU: address, vendor, model, vendor_id, device_id,
// class, iommu_group, driver), so what the node found is what the grid
// sees.
type GPU = fact.GPU

// MaxGPUs is the most GPUs a node record holds: the largest servers carry
// 8 to 16; more is a node reporting nonsense.
const MaxGPUs = 64

var (
	pciAddrRE = regexp.MustCompile(`^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)
	hex4RE    = regexp.MustCompile(`^[0-9a-f]{4}$`)
	classRE   = regexp.MustCompile(`^[0-9a-f]{6}$`)
	driverRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{0,64}$`)
)

// CheckGPUs reports what is wrong with a node's gpus, naming the entry and
// the field.
func CheckGPUs(gpus []GPU) error {
	if len(gpus) > MaxGPUs {
		return fmt.Errorf("gpus: %d entries, at most %d", len(gpus), MaxGPUs)
	}
	for i, g := range gpus {
		bad := func(field, v, want string) error {
			return fmt.Errorf("gpus[%d].%s %q: want %s", i, field, clip(v), want)
		}
		switch {
		case !pciAddrRE.MatchString(g.Address):
			return bad("address", g.Address, "a PCI address such as 0000:01:00.0")
		case !hex4RE.MatchString(g.VendorID):
			return bad("vendor_id", g.VendorID, "four lower-case hex digits")
		case !hex4RE.MatchString(g.DeviceID):
			return bad("device_id", g.DeviceID, "four lower-case hex digits")
		case !classRE.MatchString(g.Class):
			return bad("class", g.Class, "six lower-case hex digits (class, subclass, interface)")
		case g.IOMMUGroup != "" && !isGroup(g.IOMMUGroup):
			return bad("iommu_group", g.IOMMUGroup, `a number, or "" when the IOMMU is off`)
		case !driverRE.MatchString(g.Driver):
			return bad("driver", g.Driver, "a kernel module name")
		case !printable(g.Vendor, 256):
			return bad("vendor", g.Vendor, "at most 256 printable characters")
		case !printable(g.Model, 256):
			return bad("model", g.Model, "at most 256 printable characters")
		}
	}
	return nil
}

func isGroup(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

func printable(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// clip shortens what an error quotes back.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
