// Package gate decides whether a node belongs to a channel's rollout at a
// time: a pure function of the signed channel document, the registrar's
// unsigned hold, the node and the clock, used alike by the node's upgrade
// module, the simulator and the netboot server, so all three agree.
//
// A node is in the rollout when its farm is a canary farm, or when a hash of
// its id and the version falls under the share of the wave in force. The
// hash includes the version so each release picks a different first 1 %:
// the same unlucky nodes are not always the first to try a release.
package gate

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"

	"github.com/gridnode/gridnode/upgrade/doc"
)

// Node is what the gate knows of a node. ID is the node's stable identity:
// the base64 public key of its node key (known before it registers, and the
// same across reboots and upgrades).
type Node struct {
	ID   string
	Farm uint64
}

// Hold is the registrar's unsigned hold on a rollout (doc.Hold): it only
// caps the signed share.
type Hold = doc.Hold

// Share is the share of nodes (parts per million) the rollout of c is open
// to at now under h: the last wave started at or before now, capped by h.
func Share(c *doc.Channel, h Hold, now time.Time) uint32 {
	var share uint32
	for _, w := range c.Waves {
		if !now.Before(w.At) {
			share = w.SharePPM
		}
	}
	if h.Paused {
		return 0
	}
	if h.ShareCapPPM != nil && *h.ShareCapPPM < share {
		share = *h.ShareCapPPM
	}
	return share
}

// Point is where a node falls for a version: a number below doc.PPM, the
// same on every machine.
func Point(nodeID, version string) uint32 {
	h := sha256.Sum256([]byte("gridnode-gate-v1\x00" + nodeID + "\x00" + version))
	return uint32(binary.BigEndian.Uint64(h[:8]) % doc.PPM)
}

// Decision says whether a node is in the rollout, and why.
type Decision struct {
	In     bool
	Canary bool   // in as a canary farm's node
	Share  uint32 // the share in force, ppm
	Point  uint32 // the node's point, ppm
}

// Allowed decides whether node n belongs to the rollout of c at now under h.
// A canary farm's nodes are in from the first wave's start unless paused.
func Allowed(c *doc.Channel, h Hold, n Node, now time.Time) Decision {
	d := Decision{Share: Share(c, h, now), Point: Point(n.ID, c.Version)}
	started := len(c.Waves) > 0 && !now.Before(c.Waves[0].At)
	if started && !h.Paused && slices.Contains(c.CanaryFarms, n.Farm) {
		d.In, d.Canary = true, true
		return d
	}
	d.In = d.Point < d.Share
	return d
}
