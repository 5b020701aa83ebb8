package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
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
	var trusted []string
	c := &cobra.Command{
		Use:   "registrar",
		Short: "Serve the grid registrar API (ThreeFold node-registrar v1) and its dashboard",
		Long: `Serve the grid registrar: the node-registrar v1 API under /api/v1 and /v1,
a dashboard at /, Prometheus metrics at /metrics.

--db is a SQLite file path (created if missing) or a postgres:// URL. Several
registrars on one PostgreSQL database serve the grid as one, behind any load
balancer (each keeps its own rate limits).

Rate limits are on by default: every request counts against its client
address (IPv6 by /64) before anything else is done for it, and a signed
request against its twin once the signature is verified. Behind a proxy or
load balancer, name it with --trusted-proxy so that the client's address is
read from Forwarded or X-Forwarded-For; otherwise every client shares the
proxy's limit.`,
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
			for _, p := range trusted {
				pfx, err := parsePrefix(p)
				if err != nil {
					return fmt.Errorf("--trusted-proxy %q: want an address or a CIDR such as 10.0.0.0/8 or fd00::/8", p)
				}
				o.TrustedProxies = append(o.TrustedProxies, pfx)
			}
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
	f.BoolVar(&o.StrictAuth, "strict-auth", false, "require X-Auth-Strict signatures over method, path, body hash and nonce; refuse replays (advertised: gridnode clients sign so by themselves)")
	f.Int64Var(&o.MaxBody, "max-body", 64<<10, "largest request body in bytes (larger: 413)")
	// A node sends a few requests at boot and one every 40 minutes; a
	// farm of a hundred nodes behind one NAT address fits in the burst
	// after a power cut, a farm of thousands registers at this rate (its
	// nodes follow Retry-After). One address gets 20 signature checks or
	// store reads a second: nothing a registrar notices.
	f.Float64Var(&o.RatePerIP, "rate-per-ip", 20, "requests per second allowed per client address, IPv6 by /64 (0: unlimited)")
	f.IntVar(&o.BurstPerIP, "burst-per-ip", 400, "burst per client address (0: twice the rate)")
	// Counted once the signature is verified: a farmer approving nodes
	// one after another, or a node re-registering, stays well within it.
	f.Float64Var(&o.RatePerTwin, "rate-per-twin", 5, "signed requests per second allowed per twin, counted after the signature is verified (0: unlimited)")
	f.IntVar(&o.BurstPerTwin, "burst-per-twin", 50, "burst per twin (0: twice the rate)")
	f.StringArrayVar(&trusted, "trusted-proxy", nil, "a proxy or load balancer (address or CIDR; repeatable) whose Forwarded / X-Forwarded-For names the client for the per-address limit")
	f.StringVar(&o.SQLiteSynchronous, "sqlite-synchronous", "full", "SQLite only: full (no acknowledged write is lost on a power cut) or normal (faster; a power cut loses the last acknowledged writes)")
	f.IntVar(&o.UptimeBatch, "uptime-batch", 2000, "most writes (uptime reports, accounts, nodes) committed in one transaction")
	f.StringVar(&pprofListen, "pprof-listen", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060 (off when empty; never expose it)")
	f.BoolVar(&jsonLogs, "log-json", false, "log JSON lines instead of text")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug (every request), info, warn, error")
	return c
}

// parsePrefix reads a CIDR, or an address as a prefix of its full length.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
