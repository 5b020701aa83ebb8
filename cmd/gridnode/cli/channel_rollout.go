package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/farm"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// gridnode channel status|pause|resume: a rollout as the registrar sees
// it (nodes per version, the wave in force, nodes rolled back, the hold
// and why), and the admin twin's pause and resume.

func newChannelStatusCmd(registrar, channel *string) *cobra.Command {
	var keys []string
	c := &cobra.Command{
		Use:   "status",
		Short: "Show a channel's rollout: nodes per version, the wave in force, nodes rolled back, the hold and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, _, _, verified, err := readChannel(ctx, *registrar, *channel, keys)
			if err != nil {
				return err
			}
			st, err := cl.ChannelStatus(ctx, *channel)
			if err != nil {
				return err
			}
			writeRollout(cmd.OutOrStdout(), st, verified)
			return nil
		},
	}
	c.Flags().StringArrayVar(&keys, "key", nil, "release public key (ed25519:BASE64) to verify the document with")
	return c
}

// newChannelHoldCmd is pause or resume, as the registrar's admin twin.
func newChannelHoldCmd(registrar, channel *string, what string) *cobra.Command {
	var adminKey, reason string
	var twin uint64
	short := "Pause a channel's rollout where it is: no node not yet in it takes the version"
	if what == "resume" {
		short = "Lift a pause; the rollout stays capped at the wave it had reached (only a newly signed document moves it on)"
	}
	c := &cobra.Command{
		Use:   what,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := adminClient(ctx, *registrar, adminKey, twin)
			if err != nil {
				return fmt.Errorf("channel %s: %w", what, err)
			}
			var st api.ChannelStatus
			if what == "pause" {
				st, err = cl.PauseChannel(ctx, *channel, reason)
			} else {
				st, err = cl.ResumeChannel(ctx, *channel)
			}
			if err != nil {
				return fmt.Errorf("channel %s: %w", what, err)
			}
			writeRollout(cmd.OutOrStdout(), st, "")
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&adminKey, "admin-key", farm.DefaultKeyPath(), "key file of the registrar's admin twin")
	f.Uint64Var(&twin, "twin", 0, "the admin twin's id (default: looked up from --admin-key)")
	if what == "pause" {
		f.StringVar(&reason, "reason", "", "why, shown by channel status")
	}
	return c
}

func pct(ppm uint32) string { return fmt.Sprintf("%g%%", float64(ppm)/doc.PPM*100) }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// writeRollout prints a rollout status for people.
func writeRollout(w io.Writer, st api.ChannelStatus, verified string) {
	fmt.Fprintf(w, "channel %s: sequence %d, version %s, %s\n", st.Channel, st.Sequence, st.Version, st.Release)
	if verified != "" {
		fmt.Fprintf(w, "  %s; stored %s; expires %s\n", verified, stamp(st.StoredAt), stamp(st.Expires))
	}
	wave := "before the first wave"
	if st.Wave > 0 {
		wave = fmt.Sprintf("wave %d of %d (%s)", st.Wave, st.Waves, pct(st.WaveSharePPM))
	}
	if st.NextWave != nil {
		wave += "; next wave " + stamp(*st.NextWave)
	}
	fmt.Fprintf(w, "  %s; nodes act on %s\n", wave, pct(st.SharePPM))
	var hold []string
	if st.Hold.Paused {
		hold = append(hold, "paused")
	}
	if st.Hold.ShareCapPPM != nil {
		hold = append(hold, "capped at "+pct(*st.Hold.ShareCapPPM))
	}
	if len(hold) == 0 {
		hold = append(hold, "none")
	}
	fmt.Fprintf(w, "  hold: %s\n", strings.Join(hold, ", "))
	if p := st.Pause; p != nil {
		fmt.Fprintf(w, "  paused %s by twin %d: %s\n", stamp(p.At), p.Twin, p.Reason)
	}
	if h := st.Halt; h != nil {
		fmt.Fprintf(w, "  HALTED by the registrar %s: %s\n", stamp(h.At), h.Reason)
	}
	n := st.Nodes
	if n == nil {
		fmt.Fprintln(w, "  nodes: not counted yet")
		return
	}
	fmt.Fprintf(w, "  nodes (counted %s): %d took %s (%d offline, %d rolled back); %d others reported since the document (%d offline)\n",
		stamp(n.At), n.Upgraded, st.Version, n.UpgradedOffline, n.RolledBack, n.Baseline, n.BaselineOffline)
	if len(n.Versions) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  \tversion\tnodes\tonline\t")
	for _, v := range n.Versions {
		fmt.Fprintf(tw, "  \t%s\t%d\t%d\t\n", v.Version, v.Nodes, v.Online)
	}
	tw.Flush()
}
