package doc

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Channel is a channel document: which release a channel offers, and to
// which share of the nodes from when.
//
// Waves carry explicit start times rather than shares and one wave length:
// the gate is then a pure function of the signed document and the clock,
// with no arithmetic the node and the simulator could do differently, and a
// release engineer can shape a schedule freely (a long first wave, a pause
// over a weekend) by signing it.
type Channel struct {
	Channel  string    `json:"channel"`
	Sequence uint64    `json:"sequence"` // grows with every document of the channel
	Expires  time.Time `json:"expires"`  // a node refuses the document after this
	Version  string    `json:"version"`
	// Release is the release artifact by digest: REGISTRY/REPO@sha256:HEX.
	Release     string   `json:"release"`
	Waves       []Wave   `json:"waves"`
	CanaryFarms []uint64 `json:"canary_farms"`
}

// Wave opens the rollout to a share of the nodes at a time.
type Wave struct {
	At time.Time `json:"at"`
	// SharePPM is the share in parts per million (10 % is 100000): integers
	// keep the document canonical and allow shares below 1 %.
	SharePPM uint32 `json:"share_ppm"`
}

// PPM is one whole: a share of 1000000 parts per million is every node.
const PPM = 1_000_000

var (
	channelRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	digestRef = regexp.MustCompile(`^[^@\s]+@sha256:[0-9a-f]{64}$`)
)

// ValidChannelName reports whether s can name a channel (it goes into a
// URL path): lower-case letters, digits and '-', up to 32.
func ValidChannelName(s string) bool { return channelRE.MatchString(s) }

// Check reports what is wrong with a channel document.
func (c *Channel) Check() error {
	if !ValidChannelName(c.Channel) {
		return fmt.Errorf("channel name %q: want lower-case letters, digits and -, up to 32", c.Channel)
	}
	if c.Sequence == 0 {
		return errors.New("channel sequence 0: sequences start at 1")
	}
	if c.Expires.IsZero() {
		return errors.New("channel document without expiry")
	}
	if !versionRE.MatchString(c.Version) {
		return fmt.Errorf("channel version %q: want 1-64 letters, digits and . _ + -", c.Version)
	}
	if !digestRef.MatchString(c.Release) {
		return fmt.Errorf("channel release %q: want REGISTRY/REPO@sha256:HEX (gridnode release push prints the digest)", c.Release)
	}
	if len(c.Waves) == 0 {
		return errors.New("channel document without waves")
	}
	for i, w := range c.Waves {
		if w.SharePPM > PPM {
			return fmt.Errorf("wave %d: share %d ppm is more than every node (%d)", i+1, w.SharePPM, PPM)
		}
		if i > 0 && (!w.At.After(c.Waves[i-1].At) || w.SharePPM < c.Waves[i-1].SharePPM) {
			return fmt.Errorf("wave %d: waves must start later and never shrink (a rollout only moves forward)", i+1)
		}
	}
	return nil
}

// SignChannel checks c and returns its envelope signed by key.
func SignChannel(c Channel, key ed25519.PrivateKey) ([]byte, error) {
	c.Expires = c.Expires.UTC()
	c.Waves = append([]Wave(nil), c.Waves...)
	for i := range c.Waves {
		c.Waves[i].At = c.Waves[i].At.UTC()
	}
	if c.CanaryFarms == nil {
		c.CanaryFarms = []uint64{}
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return seal(TypeChannel, c, key)
}

// OpenChannel decodes a channel envelope and verifies it with keys (none:
// unverified, for tools that only show a document).
func OpenChannel(b []byte, keys []PublicKey) (*Channel, error) {
	payload, _, err := open(b, TypeChannel, keys)
	if err != nil {
		return nil, fmt.Errorf("channel document: %w", err)
	}
	var c Channel
	if err := decodeStrict(payload, &c); err != nil {
		return nil, fmt.Errorf("channel document: %w", err)
	}
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("channel document: %w", err)
	}
	return &c, nil
}

// Errors of Accept besides the signature's.
var (
	ErrOldSequence  = errors.New("old sequence")
	ErrExpired      = errors.New("expired")
	ErrOtherChannel = errors.New("for another channel")
)

// Accept is the node's check of a channel document before it downloads
// anything: signed by one of the image's release keys (an image without
// keys accepts nothing), for the channel it follows, a sequence above the
// last one it accepted, not expired at now.
func Accept(b []byte, keys []PublicKey, channel string, lastSequence uint64, now time.Time) (*Channel, error) {
	if len(keys) == 0 {
		return nil, errors.New("channel document: this image has no release keys (release_keys in its spec), so it accepts no upgrade")
	}
	c, err := OpenChannel(b, keys)
	if err != nil {
		return nil, err
	}
	switch {
	case c.Channel != channel:
		return nil, fmt.Errorf("channel document: %w: %q, this node follows %q", ErrOtherChannel, c.Channel, channel)
	case c.Sequence <= lastSequence:
		return nil, fmt.Errorf("channel document: %w %d; this node already accepted %d (a replayed or stale document)", ErrOldSequence, c.Sequence, lastSequence)
	case !now.Before(c.Expires):
		return nil, fmt.Errorf("channel document: %w at %s (now %s); the release engineer must sign a new one", ErrExpired, c.Expires.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return c, nil
}

// Hold is the registrar's rollout state for a channel, sent beside the signed
// document. It is unsigned, so it can only hold a rollout back: the gate
// (upgrade/gate) applies it as a cap on the signed share, never a raise.
type Hold struct {
	// Paused stops the rollout for every node not yet in it, canary farms
	// included (gridnode channel pause, or the registrar's own halt).
	Paused bool `json:"paused,omitempty"`
	// ShareCapPPM, when set, caps the share of the wave in force (the
	// registrar keeps a halted rollout at the last good wave's share).
	ShareCapPPM *uint32 `json:"share_cap_ppm,omitempty"`
}

// ChannelPath is the registrar's route of channel name, under /api/v1:
// PUT by the registrar's admin twin (X-Auth) with the signed envelope as the
// body, stored as sent; GET, public, answers a ChannelState.
func ChannelPath(name string) string { return "/channels/" + name }

// ChannelState is the answer to GET /api/v1/channels/NAME: the signed
// document exactly as stored, and the registrar's unsigned hold.
type ChannelState struct {
	Document json.RawMessage `json:"document"`
	Hold     Hold            `json:"hold"`
}

// ParseShares reads wave shares as a release engineer writes them:
// "1%,10%,50%,100%" (a share may have decimals: "0.1%").
func ParseShares(s string) ([]uint32, error) {
	var out []uint32
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		num, ok := strings.CutSuffix(f, "%")
		v, err := strconv.ParseFloat(num, 64)
		if !ok || err != nil || v <= 0 || v > 100 {
			return nil, fmt.Errorf("wave share %q: want a percentage above 0 and at most 100, such as 10%%", f)
		}
		out = append(out, uint32(math.Round(v*PPM/100)))
	}
	return out, nil
}

// Schedule makes waves of shares, the first at start and each next one
// every after.
func Schedule(start time.Time, shares []uint32, every time.Duration) []Wave {
	var w []Wave
	for i, s := range shares {
		w = append(w, Wave{At: start.Add(time.Duration(i) * every).UTC(), SharePPM: s})
	}
	return w
}
