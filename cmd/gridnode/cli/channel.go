package cli

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridnode/gridnode/build/release"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/farm"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// The channel commands speak the registrar's channel routes through
// grid/client: PUT /api/v1/channels/NAME (the registrar's admin twin) with
// the signed envelope as the body, GET /api/v1/channels/NAME (public) for a
// doc.ChannelState, and the rollout's status, pause and resume
// (channel_rollout.go).
func newChannelCmd() *cobra.Command {
	var registrar, channel string
	cmd := &cobra.Command{
		Use:   "channel",
		Short: "Publish a signed release channel document to a registrar, show it, and follow, pause or resume its rollout",
	}
	cmd.PersistentFlags().StringVar(&registrar, "registrar", farm.DefaultRegistrar, "registrar URL or network name (dev, test, qa, main)")
	cmd.PersistentFlags().StringVar(&channel, "channel", "stable", "channel name")
	cmd.AddCommand(newChannelPublishCmd(&registrar, &channel), newChannelShowCmd(&registrar, &channel),
		newChannelStatusCmd(&registrar, &channel), newChannelHoldCmd(&registrar, &channel, "pause"), newChannelHoldCmd(&registrar, &channel, "resume"))
	return cmd
}

func newChannelPublishCmd(registrar, channel *string) *cobra.Command {
	var ref, keyFile, adminKey, waves, canaries, start string
	var waveTime, expires time.Duration
	var seq, twin uint64
	c := &cobra.Command{
		Use:   "publish --release REF@sha256:… --key RELEASE_KEY",
		Short: "Sign a channel document for a release and store it on the registrar",
		Long: `publish reads the release's signed release.json from its registry (it must be
signed with the same release key, as nodes check both), signs a channel
document naming the release by digest with its version, the waves and the
canary farms, and PUTs it to the registrar as its admin twin (--admin-key,
a farmer-style key whose twin the registrar was started with).

The sequence is the stored document's plus one unless --sequence is given;
nodes accept only a sequence above the last one they accepted. Waves start at
--start and one every --wave-time: with --waves 1%,10%,50%,100% and
--wave-time 24h, every node has the release after three days.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			key, err := doc.LoadPrivateKey(keyFile)
			if err != nil {
				return fmt.Errorf("channel publish: %w", err)
			}
			pub := doc.PublicKey(key.Public().(ed25519.PublicKey))
			rel, err := release.ReadDocument(ctx, ref, []doc.PublicKey{pub})
			if err != nil {
				return fmt.Errorf("channel publish: %w", err)
			}
			shares, err := doc.ParseShares(waves)
			if err != nil {
				return fmt.Errorf("channel publish: --waves: %w", err)
			}
			farms, err := parseFarms(canaries)
			if err != nil {
				return fmt.Errorf("channel publish: --canary-farms: %w", err)
			}
			cl, err := adminClient(ctx, *registrar, adminKey, twin)
			if err != nil {
				return fmt.Errorf("channel publish: %w", err)
			}
			at := time.Now()
			if start != "" {
				if at, err = time.Parse(time.RFC3339, start); err != nil {
					return fmt.Errorf("channel publish: --start %q: want RFC 3339 (2026-06-01T12:00:00Z)", start)
				}
			}
			if seq == 0 {
				cur, err := cl.Channel(ctx, *channel, "")
				switch {
				case client.IsNotFound(err):
					seq = 1
				case err != nil:
					return fmt.Errorf("channel publish: %w", err)
				default:
					c, err := doc.OpenChannel(cur.State.Document, nil)
					if err != nil {
						return fmt.Errorf("channel publish: the stored document: %w", err)
					}
					seq = c.Sequence + 1
				}
			}
			signed, err := doc.SignChannel(doc.Channel{
				Channel: *channel, Sequence: seq, Expires: at.Add(expires), Version: rel.Version,
				Release: ref, Waves: doc.Schedule(at, shares, waveTime), CanaryFarms: farms,
			}, key)
			if err != nil {
				return fmt.Errorf("channel publish: %w", err)
			}
			if err := cl.PutChannel(ctx, *channel, signed); err != nil {
				return fmt.Errorf("channel publish: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "channel %s: sequence %d, version %s, %s, waves %s every %s, canary farms %v, expires %s\n",
				*channel, seq, rel.Version, ref, waves, waveTime, farms, at.Add(expires).UTC().Format(time.RFC3339))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&ref, "release", "", "the release by digest: REGISTRY/REPO@sha256:HEX (release push prints it)")
	f.StringVar(&keyFile, "key", "", "release key file (gridnode release keygen)")
	f.StringVar(&adminKey, "admin-key", farm.DefaultKeyPath(), "key file of the registrar's admin twin")
	f.Uint64Var(&twin, "twin", 0, "the admin twin's id (default: looked up from --admin-key)")
	f.StringVar(&waves, "waves", "1%,10%,50%,100%", "wave shares")
	f.DurationVar(&waveTime, "wave-time", 24*time.Hour, "time between waves")
	f.StringVar(&start, "start", "", "first wave's start, RFC 3339 (default: now)")
	f.StringVar(&canaries, "canary-farms", "", "farms whose nodes take the release from the first wave, comma-separated")
	f.DurationVar(&expires, "expires", 30*24*time.Hour, "how long nodes accept the document")
	f.Uint64Var(&seq, "sequence", 0, "sequence number (default: the stored one plus one)")
	c.MarkFlagRequired("release")
	c.MarkFlagRequired("key")
	return c
}

func newChannelShowCmd(registrar, channel *string) *cobra.Command {
	var keys []string
	c := &cobra.Command{
		Use:   "show",
		Short: "Show a channel's document and the registrar's hold on it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, st, c, verified, err := readChannel(cmd.Context(), *registrar, *channel, keys)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "channel %s: sequence %d, version %s, %s\n  %s; expires %s\n", c.Channel, c.Sequence, c.Version, c.Release, verified, c.Expires.Format(time.RFC3339))
			for _, wv := range c.Waves {
				fmt.Fprintf(w, "  wave %s: %g%%\n", wv.At.Format(time.RFC3339), float64(wv.SharePPM)/doc.PPM*100)
			}
			fmt.Fprintf(w, "  canary farms %v; paused %v", c.CanaryFarms, st.Hold.Paused)
			if st.Hold.ShareCapPPM != nil {
				fmt.Fprintf(w, "; capped at %g%%", float64(*st.Hold.ShareCapPPM)/doc.PPM*100)
			}
			fmt.Fprintln(w)
			return nil
		},
	}
	c.Flags().StringArrayVar(&keys, "key", nil, "release public key (ed25519:BASE64) to verify the document with")
	return c
}

func parseFarms(s string) ([]uint64, error) {
	out := []uint64{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q is not a farm id", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// readChannel reads channel from registrar with a client of no key, and
// opens its document verified by keys (release public keys; none: not
// verified, as verified then says).
func readChannel(ctx context.Context, registrar, channel string, keys []string) (*client.Client, *doc.ChannelState, *doc.Channel, string, error) {
	pub, err := doc.ParsePublicKeys(keys)
	if err != nil {
		return nil, nil, nil, "", err
	}
	cl, err := client.New(farm.ResolveRegistrar(registrar), nil, client.Options{UserAgent: "gridnode-channel"})
	if err != nil {
		return nil, nil, nil, "", err
	}
	a, err := cl.Channel(ctx, channel, "")
	if err != nil {
		return nil, nil, nil, "", err
	}
	c, err := doc.OpenChannel(a.State.Document, pub)
	if err != nil {
		return nil, nil, nil, "", fmt.Errorf("channel %s: %w", channel, err)
	}
	verified := "signature not checked (give --key)"
	if len(pub) > 0 {
		verified = "signed by a given key"
	}
	return cl, &a.State, c, verified, nil
}

// adminClient is a client of registrar signing as the admin twin: the key
// in keyFile, its twin given or looked up.
func adminClient(ctx context.Context, registrar, keyFile string, twin uint64) (*client.Client, error) {
	admin, err := farm.LoadKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("--admin-key: %w", err)
	}
	cl, err := client.New(farm.ResolveRegistrar(registrar), admin, client.Options{UserAgent: "gridnode-channel"})
	if err != nil {
		return nil, err
	}
	if twin == 0 {
		acct, err := cl.AccountByKey(ctx, cl.PublicKey())
		if err != nil {
			return nil, fmt.Errorf("the admin key's twin: %w", err)
		}
		twin = acct.TwinID
	}
	cl.SetTwin(twin)
	return cl, nil
}
