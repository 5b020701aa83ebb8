package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gridnode/gridnode/grid/registrar"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/spf13/cobra"
)

func newRegistrarCmd() *cobra.Command {
	var o registrar.Options
	var jsonLogs bool
	var logLevel, pprofListen string
	var releaseKeys []string
	c := &cobra.Command{
		Use:   "registrar",
		Short: "Serve the grid registrar API (ThreeFold node-registrar v1) and its dashboard",
		Long: `Serve the grid registrar: the node-registrar v1 API under /api/v1 and /v1,
a dashboard at /, Prometheus metrics at /metrics.

--db is a SQLite file path (created if missing) or a postgres:// URL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			hopts := &slog.HandlerOptions{Level: lvl}
			var h slog.Handler = slog.NewTextHandler(cmd.ErrOrStderr(), hopts)
			if jsonLogs {
				h = slog.NewJSONHandler(cmd.ErrOrStderr(), hopts)
			}
			o.Log = slog.New(h)
			keys, err := doc.ParsePublicKeys(releaseKeys)
			if err != nil {
				return fmt.Errorf("--release-key: %w", err)
			}
			o.ReleaseKeys = keys
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			if pprofListen != "" {
				ln, err := net.Listen("tcp", pprofListen)
				if err != nil {
					return fmt.Errorf("--pprof-listen %s: %w", pprofListen, err)
				}
				defer ln.Close()
				mux := http.NewServeMux()
				mux.HandleFunc("/debug/pprof/", pprof.Index)
				mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
				mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
				mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
				mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
				go http.Serve(ln, mux)
				o.Log.Info("profiling", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
			}
			return registrar.Run(ctx, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address to listen on")
	f.StringVar(&o.DB, "db", "gridnode-registrar.db", "SQLite file path or postgres:// URL")
	f.Uint64Var(&o.AdminTwin, "admin-twin", 0, "twin allowed to PUT /zos/version, publish channel documents and pause or resume rollouts (0: nobody)")
	f.StringArrayVar(&releaseKeys, "release-key", nil, "release public key (ed25519:BASE64, as gridnode release keygen prints it) that must sign channel documents; repeatable (none: documents are checked for form only)")
	f.DurationVar(&o.ReportInterval, "report-interval", 40*time.Minute, "how often nodes report uptime (their gridnode.uptime): rollouts are evaluated every quarter of it, a node is offline after 1.5 of it")
	f.Float64Var(&o.HaltShare, "halt-share", 0.1, "halt a rollout when the share of its upgraded nodes gone offline or rolled back exceeds the other nodes' offline share by this much (1: never)")
	f.IntVar(&o.HaltMinNodes, "halt-min-nodes", 5, "nodes that must have taken a version before its rollout can be halted")
	f.DurationVar(&o.ChannelTTL, "channel-ttl", 2*time.Second, "longest a channel is served from memory before it is read again (how soon another replica's write shows)")
	f.BoolVar(&o.StrictAuth, "strict-auth", false, "require X-Auth-Strict signatures over method, path, body hash and nonce; refuse replays")
	f.Int64Var(&o.MaxBody, "max-body", 64<<10, "largest request body in bytes (larger: 413)")
	f.Float64Var(&o.RatePerIP, "rate-per-ip", 0, "requests per second allowed per client address (0: unlimited)")
	f.IntVar(&o.BurstPerIP, "burst-per-ip", 0, "burst per client address (0: twice the rate)")
	f.Float64Var(&o.RatePerTwin, "rate-per-twin", 0, "authenticated requests per second allowed per twin (0: unlimited)")
	f.IntVar(&o.BurstPerTwin, "burst-per-twin", 0, "burst per twin (0: twice the rate)")
	f.IntVar(&o.UptimeBatch, "uptime-batch", 2000, "most writes (uptime reports, accounts, nodes) committed in one transaction")
	f.StringVar(&pprofListen, "pprof-listen", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060 (off when empty; never expose it)")
	f.BoolVar(&jsonLogs, "log-json", false, "log JSON lines instead of text")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug (every request), info, warn, error")
	return c
}
