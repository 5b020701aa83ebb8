package config

import (
	"strings"
	"testing"
	"time"
)

// TestUpgradeKeys: gridnode.channel, gridnode.upgrade_poll and
// gridnode.upgrade_trial come from the image's node section, gridnode.conf
// and the kernel command line, later sources winning; a channel the node
// cannot follow is refused by name.
func TestUpgradeKeys(t *testing.T) {
	n := Default()
	if n.Channel != "stable" || n.UpgradePoll.D() != time.Hour || n.UpgradeTrial.D() != 10*time.Minute {
		t.Fatalf("defaults: channel %q, poll %s, trial %s", n.Channel, n.UpgradePoll.D(), n.UpgradeTrial.D())
	}
	if err := DecodeYAML(&n, "node.yaml", []byte("channel: beta\nupgrade_poll: 30m\n")); err != nil {
		t.Fatal(err)
	}
	if n.Channel != "beta" || n.UpgradePoll.D() != 30*time.Minute {
		t.Fatalf("from YAML: %+v", n)
	}
	if err := ApplyKV(&n, "gridnode.conf", "channel=none\nupgrade_trial=4m\n"); err != nil {
		t.Fatal(err)
	}
	if n.Channel != ChannelNone || n.UpgradeTrial.D() != 4*time.Minute {
		t.Fatalf("from gridnode.conf: %+v", n)
	}
	if w := ApplyCmdline(&n, "gridnode.channel=edge gridnode.upgrade_poll=5s"); len(w) != 0 {
		t.Fatal(w)
	}
	if n.Channel != "edge" || n.UpgradePoll.D() != 5*time.Second {
		t.Fatalf("from the command line: %+v", n)
	}
	for kv, want := range map[string]string{
		"channel=stabel":     `gridnode.conf: channel "stabel": allowed values are stable, beta, edge, none`,
		"upgrade_poll=often": `gridnode.conf:1: bad duration "often"`,
		"upgrade_trial=0s":   `gridnode.conf:1: bad duration "0s": must be positive`,
	} {
		m := Default()
		if err := ApplyKV(&m, "gridnode.conf", kv); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", kv, err, want)
		}
	}
}
