package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/gridnode/gridnode/grid/farm"
	"github.com/gridnode/gridnode/grid/simulate"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/spf13/cobra"
)

func newSimulateCmd() *cobra.Command {
	var cfg simulate.Config
	var registrar string
	var asJSON bool
	var cpuProfile, idsFile string
	var follow simulate.FollowConfig
	var releaseKeys []string
	cmd := &cobra.Command{
		Use:   "simulate --nodes N --registrar URL",
		Short: "Run N virtual nodes against a registrar and measure it",
		Long: `Run N virtual nodes in one process against a registrar, doing what real nodes
do: account, node registration, uptime reports.

storm (default): every node registers at once, bounded by --concurrency, as after
a regional power cut; each then reports its uptime once.
steady: the nodes register first (found again when they exist), then send uptime
reports at --rate per second (default: nodes / --uptime-interval) for --duration;
a report's latency counts from when it was due, so waiting for a free worker
(--concurrency) when the registrar falls behind shows in the percentiles.
--rate -1 is a closed loop instead: the registrar's throughput with
--concurrency reports in flight.
follow: the nodes register (or are found), then follow --channel for --duration
as nodes do: each polls it every --poll (±10 %, with its ETag), applies the
gate (upgrade/gate: its node id and farm, the registrar's hold) and, when in
the rollout, "upgrades": its next uptime report (every --uptime-interval)
carries the new os_version. --stop-share of the nodes that upgrade stop
reporting after that first report, as if the release killed them; --farms
spreads the nodes over farms, so that some can be canary farms.

Keys derive from --seed and the node's index, so --start-index runs a large
simulation in chunks. --json prints one machine-readable line at the end.

--ids FILE keeps the nodes' twin and node ids: a run writes them there, and a
later run with the same --seed, --start-index and --registrar reads them, so
its nodes do not register again (a steady run over a million nodes a storm
registered starts reporting at once). A fresh registrar database needs a new
file.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg.Registrar = farm.ResolveRegistrar(registrar)
			if cfg.Mode == simulate.Follow {
				keys, err := doc.ParsePublicKeys(releaseKeys)
				if err != nil {
					return fmt.Errorf("--release-key: %w", err)
				}
				follow.Keys = keys
				cfg.FollowChannel = &follow
			}
			if !asJSON {
				cfg.Progress = c.ErrOrStderr()
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			if idsFile != "" {
				cfg.KeepIDs = true
				known, err := simulate.LoadIDs(idsFile, cfg)
				switch {
				case err == nil:
					cfg.Known = known
				case !errors.Is(err, fs.ErrNotExist):
					return err
				}
			}
			ctx, stop := signal.NotifyContext(c.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			res, err := simulate.Run(ctx, cfg)
			if idsFile != "" && res != nil && res.IDs != nil {
				if serr := simulate.SaveIDs(idsFile, cfg, res.IDs); serr != nil && err == nil {
					err = serr
				}
			}
			if res != nil {
				if asJSON {
					if werr := res.WriteJSON(c.OutOrStdout()); werr != nil {
						return werr
					}
				} else if werr := res.WriteText(c.OutOrStdout()); werr != nil {
					return werr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Nodes, "nodes", 1000, "number of virtual nodes")
	f.StringVar(&registrar, "registrar", farm.DefaultRegistrar, "registrar URL or network name")
	f.StringVar(&cfg.Mode, "mode", simulate.Storm, "storm, steady or follow")
	f.IntVar(&cfg.Concurrency, "concurrency", 256, "workers and HTTP connections")
	f.DurationVar(&cfg.Duration, "duration", 0, "storm: stop starting nodes after this; steady: length of the reporting phase (default 1m)")
	f.DurationVar(&cfg.UptimeInterval, "uptime-interval", 40*time.Minute, "steady: how often each node reports (sets the rate)")
	f.Float64Var(&cfg.Rate, "rate", 0, "steady: uptime reports per second (overrides --uptime-interval); -1: closed loop, as fast as the registrar answers")
	f.IntVar(&cfg.StartIndex, "start-index", 0, "index of the first node (resume a large run in chunks)")
	f.StringVar(&cfg.Seed, "seed", "gridnode-simulate", "seed the node keys derive from")
	f.StringVar(&cfg.FarmName, "farm-name", "simulated", "farm the nodes join (created when missing)")
	f.IntVar(&cfg.Farms, "farms", 1, "farms the nodes are spread over (--farm-name, then --farm-name2, ...)")
	f.StringVar(&follow.Channel, "channel", "stable", "follow: the release channel")
	f.DurationVar(&follow.Poll, "poll", time.Minute, "follow: how often each node polls the channel")
	f.StringVar(&follow.From, "from", "0", "follow: the version the nodes run at the start")
	f.Float64Var(&follow.StopShare, "stop-share", 0, "follow: share of the upgraded nodes that stop reporting after their first report")
	f.StringArrayVar(&releaseKeys, "release-key", nil, "follow: release public key (ed25519:BASE64) documents must be signed by; none: not checked")
	f.BoolVar(&cfg.AssumeNew, "assume-new", false, "skip the lookups of a rebooting node: create at once, look up on 409")
	f.IntVar(&cfg.Retries, "retries", 3, "retries of a request that failed with a network error, 429 or 5xx")
	f.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "timeout of one request")
	f.StringVar(&idsFile, "ids", "", "file keeping the nodes' twin and node ids between runs (read if present, written at the end)")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON line")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write the simulator's CPU profile to this file (go tool pprof)")
	return cmd
}
