package upgrade

import (
	"fmt"
	"strconv"
	"time"

	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/gate"
	"github.com/gridnode/gridnode/upgrade/trial"
)

// action is what the module does about a channel's state.
type action int

const (
	refuse  action = iota // the document is refused: verdict.err says why
	current               // the node runs the channel's version
	hold                  // a release is offered, not to this node now: verdict.why says why
	take                  // download the release and try it
)

// offer is what the module knows when it decides: the channel's state as
// the registrar served it, and the node's own.
type offer struct {
	state   doc.ChannelState
	keys    []doc.PublicKey // the image's release keys
	channel string          // the channel this node follows
	st      trial.State     // last sequence accepted, versions that failed
	running string          // the version this node runs
	node    gate.Node
	now     time.Time
}

// verdict is the decision on an offer.
type verdict struct {
	act  action
	ch   *doc.Channel // nil when refused
	gate gate.Decision
	why  string
	err  error
}

// decide is the module's whole decision on a channel document, without
// side effects: verify (signature by a release key, the node's channel,
// not older than the last sequence accepted, not expired), then the
// version (running already, or failed here under this sequence), then the
// rollout (the registrar's hold, the gate).
//
// The document the node accepted last is accepted again: a poll gets it
// until the next one is published, and a download that failed is retried
// under it. Only a sequence below it is a replay.
func decide(o offer) verdict {
	c, err := doc.Accept(o.state.Document, o.keys, o.channel, 0, o.now)
	if err == nil && c.Sequence < o.st.LastSequence {
		err = fmt.Errorf("channel document: %w %d; this node already accepted %d (a replayed or stale document)", doc.ErrOldSequence, c.Sequence, o.st.LastSequence)
	}
	if err != nil {
		return verdict{act: refuse, err: err}
	}
	v := verdict{ch: c, gate: gate.Allowed(c, o.state.Hold, o.node, o.now)}
	switch {
	case c.Version == o.running:
		v.act, v.why = current, "up to date"
	case !o.st.ShouldTry(c.Version, c.Sequence):
		v.act, v.why = hold, fmt.Sprintf("%s failed its trial on this node; not tried again until a document newer than sequence %d offers it", c.Version, c.Sequence)
	case o.state.Hold.Paused:
		v.act, v.why = hold, fmt.Sprintf("%s offered; the rollout is paused on the registrar", c.Version)
	case !v.gate.In:
		v.act, v.why = hold, fmt.Sprintf("%s offered; this node (at %s) is not in the rollout, open to %s of nodes", c.Version, pct(v.gate.Point), pct(v.gate.Share))
	default:
		v.act = take
		if v.gate.Canary {
			v.why = fmt.Sprintf("%s offered; this node's farm is a canary farm", c.Version)
		} else {
			v.why = fmt.Sprintf("%s offered; this node (at %s) is in the rollout, open to %s of nodes", c.Version, pct(v.gate.Point), pct(v.gate.Share))
		}
	}
	return v
}

// pct writes parts per million as a percentage.
func pct(ppm uint32) string {
	return strconv.FormatFloat(float64(ppm)/(doc.PPM/100), 'f', -1, 64) + "%"
}
