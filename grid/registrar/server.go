// Package registrar is the grid registrar server: the ThreeFold node-registrar
// v1 API (shared/registrar-api.md) over a store.Store (SQLite or PostgreSQL),
// with a dashboard at "/" and Prometheus metrics at /metrics.
//
// Every route is served under /api/v1 and /v1. Differences from the
// reference, all opt-in or additive:
//
//   - POST /nodes/{node_id}/approve (extension): the owner twin of the node's
//     farm approves the node (X-Auth); 200 {"node_id": N, "approved": true}.
//   - Strict mode (Config.StrictAuth, `--strict-auth`): every authenticated
//     request must also carry X-Auth-Strict: "<nonce_b64>:<signature_b64>",
//     a signature by the twin's key over api.StrictMessage — the X-Auth
//     timestamp and twin, the nonce, the method, the request URI and the hex
//     sha256 of the body. A nonce seen within the challenge window (60 s) is
//     refused (401 "replayed request"), so a captured request can neither be
//     replayed nor altered. The default mode stays wire-compatible.
//   - Writes are committed in groups: the store commits the account, node
//     and uptime writes that arrive while a transaction runs in the next one
//     (store/groupcommit: one queue, one retry policy, one deadline per
//     group). A handler answers once its write is committed, so no accepted
//     write is lost, while a busy grid pays one commit per group, not per
//     request. A write the database did not take within the deadline is
//     answered 503 with Retry-After.
//   - A node's owner and its key are read together and kept in bounded
//     caches; an X-Auth header already verified (a node signs once a second
//     and sends that header with each request of the second) is not verified
//     again.
//   - Rate limits (Config.RatePerIP, RatePerTwin; off by default): token
//     buckets answered with 429 and Retry-After.
//   - Release channels (issue 13; channels.go, rollout.go): PUT
//     /channels/{name} by the admin twin with a signed channel document,
//     GET /channels/{name} (public, from memory, ETag/304),
//     GET /channels/{name}/status, POST /channels/{name}/pause|resume
//     (admin twin); the registrar halts a rollout whose upgraded nodes go
//     offline or roll back (Config.HaltShare).
//   - Extension fields (grid/api report.go): the uptime body's OS
//     state and node records' gpus, checked and kept.
//   - Only ed25519 keys are accepted (the reference also tries sr25519).
//   - An unknown route under the API prefixes answers a JSON 404 (also for a
//     known path with another method).
//
// Tests run each case on SQLite and on PostgreSQL:
//
//	export GRIDNODE_TEST_POSTGRES=$(.ci/postgres.sh)  # installs, starts, prints URL
//	go test ./grid/registrar/...                      # PG cases skip without it (fail with CI set)
//	go test -run=^$ -fuzz=FuzzDecode ./grid/registrar/ # or FuzzAuthHeader
//	go test -run=^$ -bench=Register ./grid/registrar/
//
// TestDashboardBrowser needs Debian's chromium; GRIDNODE_DASHBOARD_PNG=1
// keeps its screenshot in testdata/dashboard.png.
package registrar

import (
	"crypto/ed25519"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/dashboard"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// Config configures a Server. The zero value is usable (with a Store).
type Config struct {
	Store store.Store
	Log   *slog.Logger
	// AdminTwin may PUT /zos/version, publish channel documents and pause
	// or resume rollouts; 0: nobody.
	AdminTwin uint64
	// ReleaseKeys: a channel document must be signed by one of them; none:
	// documents are checked for form only (Run says so at start).
	ReleaseKeys []doc.PublicKey
	// ChannelTTL bounds how long a channel is served from memory before it
	// is read from the store again, which is how long another replica's
	// write may take to show (default 2 s).
	ChannelTTL time.Duration
	// ReportInterval is how often nodes report their uptime (default 40
	// min): rollouts are evaluated every quarter of it and a node that
	// took no report for 1.5 of it counts as offline.
	ReportInterval time.Duration
	// HaltShare is by how much the share of a rollout's upgraded nodes
	// that went offline or rolled back may exceed the offline share of
	// the others before the registrar halts it (default 0.1; 1 never
	// halts), once HaltMinNodes (default 5) took the version.
	HaltShare    float64
	HaltMinNodes int
	// StrictAuth requires X-Auth-Strict on authenticated requests.
	StrictAuth bool
	// MaxBody is the largest request body accepted (default 64 KiB); larger: 413.
	MaxBody int64
	// RatePerIP and RatePerTwin are sustained requests per second allowed
	// per client address and per authenticated twin; 0 disables. Burst*
	// default to twice the rate (at least 1).
	RatePerIP, RatePerTwin   float64
	BurstPerIP, BurstPerTwin int
	// UptimeBatch, when set, is the most writes (uptime reports, and the
	// account and node creations committed with them) in one transaction
	// of a store that groups them (store.Grouped); 0 keeps the store's.
	UptimeBatch int
	// SampleEvery is how often the nodes-online series is sampled (default 1 min).
	SampleEvery time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Server serves the registrar API. Create it with New; Close it after the
// HTTP server has shut down, to stop its background work.
type Server struct {
	cfg      Config
	st       store.Store
	stats    *statsCache // st, with its totals shared by the pages
	log      *slog.Logger
	now      func() time.Time
	mux      *http.ServeMux
	keys     *cache[[ed25519.PublicKeySize]byte]
	owners   *cache[owner]
	verified *cache[verifiedAuth]
	nonces   *nonceCache
	ipLim    *limiter
	twinLim  *limiter
	metrics  *metrics
	channels *channelCache
	rollouts *rollouts
	stop     chan struct{}
	wg       sync.WaitGroup
}

// New returns a server over cfg.Store and starts its background work (the
// online sampler). It sets the store's group size (Config.UptimeBatch) and
// observes its group commits for /metrics.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = time.Minute
	}
	if cfg.ChannelTTL <= 0 {
		cfg.ChannelTTL = 2 * time.Second
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = defaultReportInterval
	}
	if cfg.HaltShare <= 0 {
		cfg.HaltShare = defaultHaltShare
	}
	if cfg.HaltMinNodes <= 0 {
		cfg.HaltMinNodes = defaultHaltMinNodes
	}
	s := &Server{
		cfg: cfg, st: cfg.Store, stats: &statsCache{Store: cfg.Store}, log: cfg.Log, now: cfg.Now,
		mux: http.NewServeMux(),
		// Bounded caches keep memory flat however many nodes there are;
		// what they hold is what a booting node asks for next.
		keys:     newCache[[ed25519.PublicKeySize]byte](1 << 16),
		owners:   newCache[owner](1 << 16),
		verified: newCache[verifiedAuth](1 << 14),
		nonces:   newNonceCache(),
		ipLim:    newLimiter(cfg.RatePerIP, cfg.BurstPerIP),
		twinLim:  newLimiter(cfg.RatePerTwin, cfg.BurstPerTwin),
		channels: newChannelCache(cfg.Store, cfg.ChannelTTL),
		rollouts: newRollouts(),
		stop:     make(chan struct{}),
	}
	s.metrics = newMetrics(s)
	if g, ok := cfg.Store.(store.Grouped); ok {
		if cfg.UptimeBatch > 0 {
			p := g.GroupPolicy()
			p.Max = cfg.UptimeBatch
			g.SetGroupPolicy(p)
		}
		g.ObserveGroups(s.metrics.group)
	}
	s.routes()
	s.wg.Add(2)
	go s.sampler()
	go s.evaluator()
	return s
}

// Close stops the background work. Call it after http.Server.Shutdown and
// before closing the store (which commits the writes still queued).
func (s *Server) Close() error {
	close(s.stop)
	s.wg.Wait()
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w, status: 200}
	if !s.ipLim.allow(clientIP(r), rw) {
		s.metrics.observe("ratelimited", rw.status, time.Since(start))
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(rw, r.Body, s.cfg.MaxBody)
	}
	s.mux.ServeHTTP(rw, r)
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	d := time.Since(start)
	s.metrics.observe(route, rw.status, d)
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rw.status, "duration", d, "remote", r.RemoteAddr)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) routes() {
	type route struct {
		method, path string
		h            http.HandlerFunc
	}
	routes := []route{
		{"POST", "/accounts", s.createAccount},
		{"GET", "/accounts", s.getAccount},
		{"PATCH", "/accounts/{twin_id}", s.updateAccount},
		{"GET", "/farms", s.listFarms},
		{"GET", "/farms/{farm_id}", s.getFarm},
		{"POST", "/farms", s.createFarm},
		{"PATCH", "/farms/{farm_id}", s.updateFarm},
		{"GET", "/nodes", s.listNodes},
		{"GET", "/nodes/{node_id}", s.getNode},
		{"POST", "/nodes", s.createNode},
		{"PATCH", "/nodes/{node_id}", s.updateNode},
		{"POST", "/nodes/{node_id}/uptime", s.uptime},
		{"POST", "/nodes/{node_id}/approve", s.approve},
		{"GET", "/zos/version", s.getVersion},
		{"PUT", "/zos/version", s.setVersion},
		{"GET", "/channels/{name}", s.getChannel},
		{"PUT", "/channels/{name}", s.putChannel},
		{"GET", "/channels/{name}/status", s.channelStatusRoute},
		{"POST", "/channels/{name}/pause", s.pauseChannel},
		{"POST", "/channels/{name}/resume", s.resumeChannel},
	}
	for _, p := range []string{api.Prefix, api.AltPrefix} {
		for _, rt := range routes {
			s.mux.HandleFunc(rt.method+" "+p+rt.path, rt.h)
		}
		s.mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
			fail(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
		})
	}
	s.mux.Handle("GET /metrics", s.metrics.handler(s.log))
	dash := dashboard.New(s.stats, s.now)
	s.mux.Handle("/", dash)
}
