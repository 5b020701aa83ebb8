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
//   - Writes are committed in groups: uptime reports are batched here, and
//     the store commits the account, node and uptime writes that arrive
//     while a transaction runs in the next one (store/sqldb/group.go). A
//     handler answers once its write is committed, so no accepted write is
//     lost, while a busy grid pays one commit per group, not per request.
//   - A node's owner and its key are read together and kept in bounded
//     caches; an X-Auth header already verified (a node signs once a second
//     and sends that header with each request of the second) is not verified
//     again.
//   - Rate limits (Config.RatePerIP, RatePerTwin; off by default): token
//     buckets answered with 429 and Retry-After.
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
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/dashboard"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

// Config configures a Server. The zero value is usable (with a Store).
type Config struct {
	Store store.Store
	Log   *slog.Logger
	// AdminTwin may PUT /zos/version; 0: nobody.
	AdminTwin uint64
	// StrictAuth requires X-Auth-Strict on authenticated requests.
	StrictAuth bool
	// MaxBody is the largest request body accepted (default 64 KiB); larger: 413.
	MaxBody int64
	// RatePerIP and RatePerTwin are sustained requests per second allowed
	// per client address and per authenticated twin; 0 disables. Burst*
	// default to twice the rate (at least 1).
	RatePerIP, RatePerTwin   float64
	BurstPerIP, BurstPerTwin int
	// UptimeBatch is the most reports written in one transaction (default 2000).
	UptimeBatch int
	// SampleEvery is how often the nodes-online series is sampled (default 1 min).
	SampleEvery time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Server serves the registrar API. Create it with New; Close it after the
// HTTP server has shut down, to flush the uptime batcher.
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
	batch    *batcher
	metrics  *metrics
	stop     chan struct{}
	wg       sync.WaitGroup
}

// New returns a server over cfg.Store and starts its background work
// (uptime batcher, online sampler).
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
	if cfg.UptimeBatch <= 0 {
		cfg.UptimeBatch = 2000
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = time.Minute
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
		metrics:  newMetrics(),
		stop:     make(chan struct{}),
	}
	s.batch = newBatcher(cfg.Store, cfg.UptimeBatch, s.metrics, cfg.Log)
	s.routes()
	s.wg.Add(1)
	go s.sampler()
	return s
}

// Close stops the background work, writing every pending uptime report.
// Call it after http.Server.Shutdown and before closing the store.
func (s *Server) Close() error {
	close(s.stop)
	s.wg.Wait()
	return s.batch.Close()
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
	}
	for _, p := range []string{api.Prefix, api.AltPrefix} {
		for _, rt := range routes {
			s.mux.HandleFunc(rt.method+" "+p+rt.path, rt.h)
		}
		s.mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
			fail(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
		})
	}
	s.mux.HandleFunc("GET /metrics", s.serveMetrics)
	dash := dashboard.New(s.stats, s.now)
	s.mux.Handle("/", dash)
}

// ---- helpers

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, api.Error{Error: msg})
}

// internal answers 500 for a store failure, logging what went wrong.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	fail(w, http.StatusInternalServerError, "internal error")
}

// readBody reads the body (answering 413 when too large).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mb.Limit))
		} else {
			fail(w, http.StatusBadRequest, "reading request body: "+err.Error())
		}
		return nil, false
	}
	return b, true
}

// decode unmarshals body into v, answering 400 on malformed JSON.
func decode(w http.ResponseWriter, body []byte, v any) bool {
	if err := json.Unmarshal(body, v); err != nil {
		fail(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

// authJSON authenticates r and decodes its JSON body into a T. When it
// returns false it has answered.
func authJSON[T any](s *Server, w http.ResponseWriter, r *http.Request) (req T, signer uint64, ok bool) {
	body, signer, ok := s.authBody(w, r)
	if !ok || !decode(w, body, &req) {
		return req, 0, false
	}
	return req, signer, true
}

func pathID(w http.ResponseWriter, r *http.Request, name string) (uint64, bool) {
	v, err := strconv.ParseUint(r.PathValue(name), 10, 63)
	if err != nil || v == 0 {
		fail(w, http.StatusBadRequest, "invalid "+name+": "+strconv.Quote(r.PathValue(name)))
		return 0, false
	}
	return v, true
}

func queryID(w http.ResponseWriter, r *http.Request, name string) (uint64, bool) {
	q := r.URL.Query().Get(name)
	if q == "" {
		return 0, true
	}
	v, err := strconv.ParseUint(q, 10, 63)
	if err != nil {
		fail(w, http.StatusBadRequest, "invalid "+name+": "+strconv.Quote(q))
		return 0, false
	}
	return v, true
}

// pagination reads page (from 1) and size (default 50, at most 1000).
func pagination(w http.ResponseWriter, r *http.Request) (limit, offset int, ok bool) {
	page, size := 1, 50
	q := r.URL.Query()
	if v := q.Get("page"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 1<<30 {
			fail(w, http.StatusBadRequest, "invalid page: "+strconv.Quote(v)+" (an integer from 1)")
			return 0, 0, false
		}
		page = p
	}
	if v := q.Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			fail(w, http.StatusBadRequest, "invalid size: "+strconv.Quote(v)+" (an integer from 1 to 1000)")
			return 0, 0, false
		}
		size = n
	}
	return size, (page - 1) * size, true
}

// storeErr answers a store error: 404, 409 or 500.
func (s *Server) storeErr(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		fail(w, http.StatusNotFound, what+" not found")
	case errors.Is(err, store.ErrConflict):
		fail(w, http.StatusConflict, what+" already exists")
	case errors.Is(err, store.ErrNoFarm):
		fail(w, http.StatusNotFound, "farm not found")
	default:
		s.internal(w, r, err)
	}
}

// ---- accounts

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req api.CreateAccount
	if !decode(w, body, &req) {
		return
	}
	now := s.now()
	if d := now.Unix() - req.Timestamp; d > int64(api.AccountWindow/time.Second) || d < -int64(api.AccountWindow/time.Second) {
		reply(w, http.StatusBadRequest, api.Error{Error: "timestamp outside acceptable window", ServerTime: now.Unix()})
		return
	}
	key, err := base64.StdEncoding.DecodeString(req.PublicKey)
	if err != nil || len(key) != ed25519.PublicKeySize {
		fail(w, http.StatusBadRequest, "invalid public_key: want standard base64 of a 32-byte ed25519 key")
		return
	}
	sig, err := base64.StdEncoding.DecodeString(req.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		fail(w, http.StatusBadRequest, "invalid signature: want standard base64 of a 64-byte ed25519 signature")
		return
	}
	if !ed25519.Verify(key, api.AccountMessage(req.Timestamp, req.PublicKey), sig) {
		fail(w, http.StatusUnauthorized, "signature verification failed")
		return
	}
	if req.Relays == nil {
		req.Relays = []string{}
	}
	a := api.Account{Relays: req.Relays, RMBEncKey: req.RMBEncKey, PublicKey: req.PublicKey,
		CreatedAt: now.UTC().Truncate(time.Millisecond), UpdatedAt: now.UTC().Truncate(time.Millisecond)}
	id, err := s.st.CreateAccount(r.Context(), a)
	if err != nil {
		s.storeErr(w, r, "account for this public key", err)
		return
	}
	a.TwinID = id
	s.keys.put(id, [ed25519.PublicKeySize]byte(key))
	reply(w, http.StatusCreated, a)
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	twinS, key := q.Get("twin_id"), q.Get("public_key")
	if (twinS == "") == (key == "") {
		fail(w, http.StatusBadRequest, "give exactly one of twin_id and public_key")
		return
	}
	var a api.Account
	var err error
	if twinS != "" {
		twin, ok := queryID(w, r, "twin_id")
		if !ok {
			return
		}
		a, err = s.st.Account(r.Context(), twin)
	} else {
		// Base64 has no spaces: a space is a "+" a client did not escape.
		a, err = s.st.AccountByKey(r.Context(), strings.ReplaceAll(key, " ", "+"))
	}
	if err != nil {
		s.storeErr(w, r, "account", err)
		return
	}
	reply(w, http.StatusOK, a)
}

func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request) {
	twin, ok := pathID(w, r, "twin_id")
	if !ok {
		return
	}
	body, signer, ok := s.authBody(w, r)
	if !ok {
		return
	}
	if signer != twin {
		fail(w, http.StatusForbidden, "twin "+strconv.FormatUint(signer, 10)+" may not change twin "+strconv.FormatUint(twin, 10))
		return
	}
	var req api.UpdateAccount
	if !decode(w, body, &req) {
		return
	}
	if err := s.st.UpdateAccount(r.Context(), twin, req, s.now()); err != nil {
		s.storeErr(w, r, "account", err)
		return
	}
	reply(w, http.StatusOK, map[string]string{"message": "account updated successfully"})
}

// ---- farms

func (s *Server) listFarms(w http.ResponseWriter, r *http.Request) {
	var f store.FarmFilter
	var ok bool
	if f.FarmID, ok = queryID(w, r, "farm_id"); !ok {
		return
	}
	if f.TwinID, ok = queryID(w, r, "twin_id"); !ok {
		return
	}
	f.FarmName = r.URL.Query().Get("farm_name")
	if f.Limit, f.Offset, ok = pagination(w, r); !ok {
		return
	}
	farms, err := s.st.Farms(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	reply(w, http.StatusOK, farms)
}

func (s *Server) getFarm(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "farm_id")
	if !ok {
		return
	}
	f, err := s.st.Farm(r.Context(), id)
	if err != nil {
		s.storeErr(w, r, "farm", err)
		return
	}
	reply(w, http.StatusOK, f)
}

func (s *Server) createFarm(w http.ResponseWriter, r *http.Request) {
	req, signer, ok := authJSON[api.CreateFarm](s, w, r)
	if !ok {
		return
	}
	if err := api.ValidFarmName(req.FarmName); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := api.ValidStellar(req.StellarAddress); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.TwinID != signer {
		fail(w, http.StatusForbidden, "twin_id must be the signing twin "+strconv.FormatUint(signer, 10))
		return
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	id, err := s.st.CreateFarm(r.Context(), api.Farm{FarmName: req.FarmName, TwinID: req.TwinID, StellarAddress: req.StellarAddress,
		Dedicated: req.Dedicated, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		s.storeErr(w, r, "farm named "+strconv.Quote(req.FarmName), err)
		return
	}
	reply(w, http.StatusCreated, api.FarmID{FarmID: id})
}

func (s *Server) updateFarm(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "farm_id")
	if !ok {
		return
	}
	req, signer, ok := authJSON[api.UpdateFarm](s, w, r)
	if !ok {
		return
	}
	f, err := s.st.Farm(r.Context(), id)
	if err != nil {
		s.storeErr(w, r, "farm", err)
		return
	}
	if f.TwinID != signer {
		fail(w, http.StatusForbidden, "twin "+strconv.FormatUint(signer, 10)+" does not own farm "+strconv.FormatUint(id, 10))
		return
	}
	if req.FarmName == "" {
		req.FarmName = f.FarmName
	}
	if req.StellarAddress == "" {
		req.StellarAddress = f.StellarAddress
	}
	if err := api.ValidFarmName(req.FarmName); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := api.ValidStellar(req.StellarAddress); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.st.UpdateFarm(r.Context(), id, req, s.now()); err != nil {
		s.storeErr(w, r, "farm named "+strconv.Quote(req.FarmName), err)
		return
	}
	reply(w, http.StatusOK, map[string]string{"message": "farm updated successfully"})
}

// ---- nodes

func (s *Server) online(n *api.Node, now time.Time) {
	n.Online = n.LastSeen != nil && now.Sub(*n.LastSeen) <= api.OnlineWindow
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	var f store.NodeFilter
	var ok bool
	if f.NodeID, ok = queryID(w, r, "node_id"); !ok {
		return
	}
	if f.FarmID, ok = queryID(w, r, "farm_id"); !ok {
		return
	}
	if f.TwinID, ok = queryID(w, r, "twin_id"); !ok {
		return
	}
	now := s.now()
	q := r.URL.Query()
	if v := q.Get("online"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fail(w, http.StatusBadRequest, "invalid online: "+strconv.Quote(v)+" (true or false)")
			return
		}
		f.Online, f.OnlineSince = &b, now.Add(-api.OnlineWindow)
	}
	if v := q.Get("last_seen"); v != "" {
		m, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			fail(w, http.StatusBadRequest, "invalid last_seen: "+strconv.Quote(v)+" (minutes)")
			return
		}
		f.SeenSince = now.Add(-time.Duration(m) * time.Minute)
	}
	if f.Limit, f.Offset, ok = pagination(w, r); !ok {
		return
	}
	nodes, err := s.st.Nodes(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	for i := range nodes {
		s.online(&nodes[i], now)
	}
	reply(w, http.StatusOK, nodes)
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "node_id")
	if !ok {
		return
	}
	n, err := s.st.Node(r.Context(), id)
	if err != nil {
		s.storeErr(w, r, "node", err)
		return
	}
	s.online(&n, s.now())
	reply(w, http.StatusOK, n)
}

func validNode(farm uint64, res api.Resources, ifaces []api.Interface, serial string) error {
	const maxI = 1<<63 - 1
	switch {
	case farm == 0:
		return errors.New("farm_id is required")
	case len(ifaces) == 0:
		return errors.New("interfaces must not be empty")
	case strings.TrimSpace(serial) == "":
		return errors.New("serial_number is required")
	case res.HRU > maxI || res.SRU > maxI || res.CRU > maxI || res.MRU > maxI:
		return errors.New("resources out of range")
	}
	return nil
}

func (s *Server) createNode(w http.ResponseWriter, r *http.Request) {
	req, signer, ok := authJSON[api.CreateNode](s, w, r)
	if !ok {
		return
	}
	if err := validNode(req.FarmID, req.Resources, req.Interfaces, req.SerialNumber); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.TwinID != signer {
		fail(w, http.StatusForbidden, "twin_id must be the signing twin "+strconv.FormatUint(signer, 10))
		return
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	id, err := s.st.CreateNode(r.Context(), api.Node{FarmID: req.FarmID, TwinID: req.TwinID, Location: req.Location, Resources: req.Resources,
		Interfaces: req.Interfaces, SecureBoot: req.SecureBoot, Virtualized: req.Virtualized, SerialNumber: req.SerialNumber,
		CreatedAt: now, UpdatedAt: now})
	if err != nil {
		s.storeErr(w, r, "node for twin "+strconv.FormatUint(req.TwinID, 10), err)
		return
	}
	if k, ok := s.keys.get(req.TwinID); ok {
		s.owners.put(id, owner{twin: req.TwinID, key: k, hasKey: true})
	}
	reply(w, http.StatusCreated, api.NodeID{NodeID: id})
}

// nodeOwner returns the twin owning node id and its key, in one read of
// the store when not cached (a node's owner and a twin's key never change).
func (s *Server) nodeOwner(ctx context.Context, id uint64) (owner, error) {
	if o, ok := s.owners.get(id); ok {
		return o, nil
	}
	t, key, err := s.st.NodeOwner(ctx, id)
	if err != nil {
		return owner{}, err
	}
	o := owner{twin: t}
	if k, err := base64.StdEncoding.DecodeString(key); err == nil && len(k) == ed25519.PublicKeySize {
		copy(o.key[:], k)
		o.hasKey = true
	}
	s.owners.put(id, o)
	return o, nil
}

// owner is who owns a node, with the twin's key.
type owner struct {
	twin   uint64
	key    [ed25519.PublicKeySize]byte
	hasKey bool
}

// ownNode authenticates r and checks the signer owns node id.
func (s *Server) ownNode(w http.ResponseWriter, r *http.Request) (id uint64, body []byte, ok bool) {
	id, ok = pathID(w, r, "node_id")
	if !ok {
		return 0, nil, false
	}
	// The owner's key comes with the owner: a node reporting its uptime
	// costs one read of the store, or none when cached. An unknown node is
	// answered after authentication, as before.
	o, ownerErr := s.nodeOwner(r.Context(), id)
	var hint *owner
	if ownerErr == nil && o.hasKey {
		hint = &o
	}
	body, signer, ok := s.authBodyHint(w, r, hint)
	if !ok {
		return 0, nil, false
	}
	if ownerErr != nil {
		s.storeErr(w, r, "node", ownerErr)
		return 0, nil, false
	}
	if o.twin != signer {
		fail(w, http.StatusForbidden, "twin "+strconv.FormatUint(signer, 10)+" does not own node "+strconv.FormatUint(id, 10))
		return 0, nil, false
	}
	return id, body, true
}

func (s *Server) updateNode(w http.ResponseWriter, r *http.Request) {
	id, body, ok := s.ownNode(w, r)
	if !ok {
		return
	}
	var req api.UpdateNode
	if !decode(w, body, &req) {
		return
	}
	if err := validNode(req.FarmID, req.Resources, req.Interfaces, req.SerialNumber); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.st.UpdateNode(r.Context(), id, req, s.now()); err != nil {
		s.storeErr(w, r, "node", err)
		return
	}
	reply(w, http.StatusOK, map[string]string{"message": "node updated successfully"})
}

func (s *Server) uptime(w http.ResponseWriter, r *http.Request) {
	id, body, ok := s.ownNode(w, r)
	if !ok {
		return
	}
	var req api.Uptime
	if !decode(w, body, &req) {
		return
	}
	now := s.now()
	if d := now.Unix() - req.Timestamp; d > int64(api.UptimeWindow/time.Second) || d < -int64(api.UptimeWindow/time.Second) {
		reply(w, http.StatusBadRequest, api.Error{Error: "timestamp outside acceptable window", ServerTime: now.Unix()})
		return
	}
	if req.Uptime > 1<<62 {
		fail(w, http.StatusBadRequest, "uptime out of range")
		return
	}
	if err := s.batch.submit(r.Context(), store.Uptime{NodeID: id, Uptime: req.Uptime, At: now}); err != nil {
		if errors.Is(err, errClosed) {
			fail(w, http.StatusServiceUnavailable, "registrar is shutting down; retry later")
			return
		}
		s.internal(w, r, err)
		return
	}
	reply(w, http.StatusCreated, map[string]string{"message": "uptime reported successfully"})
}

// approve is the gridnode extension POST /nodes/{node_id}/approve: the
// owner of the node's farm approves it.
func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "node_id")
	if !ok {
		return
	}
	_, signer, ok := s.authBody(w, r)
	if !ok {
		return
	}
	n, err := s.st.Node(r.Context(), id)
	if err != nil {
		s.storeErr(w, r, "node", err)
		return
	}
	f, err := s.st.Farm(r.Context(), n.FarmID)
	if err != nil {
		s.storeErr(w, r, "farm", err)
		return
	}
	if f.TwinID != signer {
		fail(w, http.StatusForbidden, "twin "+strconv.FormatUint(signer, 10)+" does not own farm "+strconv.FormatUint(f.FarmID, 10)+" of node "+strconv.FormatUint(id, 10))
		return
	}
	if err := s.st.ApproveNode(r.Context(), id, s.now()); err != nil {
		s.storeErr(w, r, "node", err)
		return
	}
	reply(w, http.StatusOK, map[string]any{"node_id": id, "approved": true})
}

// ---- zos version

// defaultVersion is served until an admin sets one.
var defaultVersion = base64.StdEncoding.EncodeToString([]byte(`{"version":"v0.0.0","safe_to_upgrade":false}`))

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	v, err := s.st.ZOSVersion(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		v, err = defaultVersion, nil
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	reply(w, http.StatusOK, v)
}

func (s *Server) setVersion(w http.ResponseWriter, r *http.Request) {
	body, signer, ok := s.authBody(w, r)
	if !ok {
		return
	}
	if s.cfg.AdminTwin == 0 || signer != s.cfg.AdminTwin {
		fail(w, http.StatusForbidden, "only the admin twin may set the version")
		return
	}
	var req api.SetZOSVersion
	if !decode(w, body, &req) {
		return
	}
	raw, err := base64.StdEncoding.DecodeString(req.Version)
	var v api.ZOSVersion
	if err != nil || json.Unmarshal(raw, &v) != nil || v.Version == "" {
		fail(w, http.StatusBadRequest, `invalid version: want base64 of {"version": "...", "safe_to_upgrade": bool}`)
		return
	}
	if err := s.st.SetZOSVersion(r.Context(), req.Version); err != nil {
		s.internal(w, r, err)
		return
	}
	reply(w, http.StatusOK, map[string]string{"message": "version updated successfully"})
}

// sampler records the nodes-online series for the dashboard.
func (s *Server) sampler() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SampleEvery)
	defer t.Stop()
	for {
		now := s.now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := s.stats.Stats(ctx, now.Add(-api.OnlineWindow))
		if err == nil {
			err = s.st.AddSample(ctx, store.Sample{At: now.Truncate(time.Minute), Online: st.Online, Total: st.Nodes})
		}
		cancel()
		if err != nil {
			s.log.Warn("sampling nodes online", "err", err)
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}
