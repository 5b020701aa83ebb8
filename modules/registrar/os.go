package registrar

import (
	"errors"
	"net/http"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/upgrade/layout"
)

// osState is what the node says of its release with each uptime report
// (the api.OSState extension, which the reference registrar ignores): the
// version it runs (its /etc/os-release), the channel it follows, and,
// when this boot came back from a trial that failed, the version that
// failed (the upgrade module's fact).
func (m *module) osState() api.OSState {
	v, err := runningVersion()
	if err != nil {
		return api.OSState{}
	}
	o := api.OSState{OSVersion: v}
	if m.cfg.Channel != config.ChannelNone {
		o.Channel = m.cfg.Channel
	}
	var u fact.Upgrade
	if fact.Read(fact.NameUpgrade, &u) == nil && u.RolledBack {
		o.RolledBack, o.RolledBackFrom = true, u.RolledBackFrom
	}
	if o.Check() != nil {
		return api.OSState{OSVersion: v}
	}
	return o
}

// runningVersion is the version of the release running; tests replace it.
var runningVersion = layout.Running

// unreachable says whether err means the registrar could not serve the
// node (no answer, 429, 5xx) rather than refused it: a trial boot takes
// that as no verdict on the release.
func unreachable(err error) bool {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Status == http.StatusTooManyRequests || ce.Status >= 500
	}
	var ne *client.NetError
	return errors.As(err, &ne)
}
