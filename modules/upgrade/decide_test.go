package upgrade

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/doc/doctest"
	"github.com/gridnode/gridnode/upgrade/gate"
	"github.com/gridnode/gridnode/upgrade/trial"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func releaseKey(t *testing.T) (ed25519.PrivateKey, doc.PublicKey) {
	t.Helper()
	k, err := doc.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k, doc.PublicKey(k.Public().(ed25519.PublicKey))
}

// channelDoc signs a channel document of version at seq whose one wave
// opens share ppm of the nodes at t0.
func channelDoc(t *testing.T, k ed25519.PrivateKey, seq uint64, version string, share uint32, change func(*doc.Channel)) []byte {
	t.Helper()
	c := doc.Channel{
		Channel: "stable", Sequence: seq, Expires: t0.Add(24 * time.Hour), Version: version,
		Release: "10.0.2.2:5000/gridnode/release@sha256:" + strings.Repeat("ab", 32),
		Waves:   []doc.Wave{{At: t0, SharePPM: share}}, CanaryFarms: []uint64{7},
	}
	if change != nil {
		change(&c)
	}
	b, err := doc.SignChannel(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nodeAt finds a node whose point for version is below (in) or at or above
// (out) share.
func nodeAt(t *testing.T, version string, share uint32, in bool) gate.Node {
	t.Helper()
	for i := range 100_000 {
		id := base64.StdEncoding.EncodeToString([]byte{byte(i), byte(i >> 8), byte(i >> 16), 1})
		if (gate.Point(id, version) < share) == in {
			return gate.Node{ID: id, Farm: 1}
		}
	}
	t.Fatal("no such node")
	return gate.Node{}
}

// The module's decision on a channel document: verified first (nothing is
// downloaded for a refused one), then the version, then the rollout.
func TestDecide(t *testing.T) {
	key, pub := releaseKey(t)
	other, _ := releaseKey(t)
	in := nodeAt(t, "0.2.0", 100_000, true)
	out := nodeAt(t, "0.2.0", 100_000, false)
	canary := out
	canary.Farm = 7
	good := channelDoc(t, key, 5, "0.2.0", 100_000, nil)
	tampered := doctest.TamperChannel(t, good, func(c *doc.Channel) { c.Version = "6.6.6" })
	cap0 := uint32(0)
	failed := trial.State{LastSequence: 5, Failed: []trial.Failure{{Version: "0.2.0", Sequence: 5}}}

	for _, c := range []struct {
		name string
		doc  []byte
		hold doc.Hold
		st   trial.State
		run  string
		node gate.Node
		now  time.Time
		want action
		why  string // in verdict.why, or the error
		is   error
	}{
		{name: "in the wave", doc: good, node: in, want: take, why: "is in the rollout, open to 10%"},
		{name: "canary farm", doc: good, node: canary, want: take, why: "canary farm"},
		{name: "out of the wave", doc: good, node: out, want: hold, why: "is not in the rollout, open to 10%"},
		{name: "running it", doc: good, node: in, run: "0.2.0", want: current, why: "up to date"},
		{name: "paused", doc: good, node: in, hold: doc.Hold{Paused: true}, want: hold, why: "paused"},
		{name: "capped", doc: good, node: in, hold: doc.Hold{ShareCapPPM: &cap0}, want: hold, why: "open to 0%"},
		{name: "failed here", doc: good, node: in, st: failed, want: hold, why: "failed its trial on this node"},
		{name: "failed, newer sequence", doc: channelDoc(t, key, 6, "0.2.0", 100_000, nil), node: in, st: failed, want: take},
		{name: "the same document again", doc: good, node: in, st: trial.State{LastSequence: 5}, want: take},
		{name: "old sequence", doc: good, node: in, st: trial.State{LastSequence: 6}, want: refuse, is: doc.ErrOldSequence, why: "old sequence 5; this node already accepted 6"},
		{name: "expired", doc: good, node: in, now: t0.Add(24 * time.Hour), want: refuse, is: doc.ErrExpired},
		{name: "bad signature", doc: tampered, node: in, want: refuse, why: "bad signature"},
		{name: "unknown key", doc: channelDoc(t, other, 5, "0.2.0", 100_000, nil), node: in, want: refuse, is: doc.ErrUnknownKey},
		{name: "other channel", doc: channelDoc(t, key, 5, "0.2.0", 100_000, func(c *doc.Channel) { c.Channel = "beta" }), node: in, want: refuse, is: doc.ErrOtherChannel},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.run == "" {
				c.run = "0.1.0"
			}
			if c.now.IsZero() {
				c.now = t0.Add(time.Hour)
			}
			v := decide(offer{state: doc.ChannelState{Document: c.doc, Hold: c.hold}, keys: []doc.PublicKey{pub},
				channel: "stable", st: c.st, running: c.run, node: c.node, now: c.now})
			if v.act != c.want {
				t.Fatalf("action %d (%s, %v), want %d", v.act, v.why, v.err, c.want)
			}
			if c.is != nil && !errors.Is(v.err, c.is) {
				t.Fatalf("error %v, want %v", v.err, c.is)
			}
			got := v.why
			if v.err != nil {
				got = v.err.Error()
			}
			if !strings.Contains(got, c.why) {
				t.Fatalf("says %q, want %q in it", got, c.why)
			}
		})
	}
	v := decide(offer{state: doc.ChannelState{Document: good}, channel: "stable", running: "0.1.0", node: in, now: t0})
	if v.act != refuse || !strings.Contains(v.err.Error(), "no release keys") {
		t.Fatalf("an image without release keys: %d %v", v.act, v.err)
	}
}
