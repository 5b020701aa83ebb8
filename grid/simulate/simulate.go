// Package simulate runs many virtual grid nodes in one process against a
// registrar, doing what real nodes do (account, node registration, uptime
// reports), to measure the registrar: `gridnode simulate`.
//
// Storm mode registers every node at once, as after a regional power cut,
// bounded by the number of workers; each node then reports its uptime once.
// Steady mode registers the nodes first (if need be), then sends uptime
// reports at a target rate for a while, as a grid in its normal life does.
// Follow mode registers them too, then has them follow a release channel
// as nodes do (follow.go).
//
// Node keys are derived from a seed and the node's index, so a run can be
// resumed in chunks (StartIndex) and a steady run finds the nodes a storm run
// registered. The only state kept per node is its twin and node id (steady
// mode, or KeepIDs): a million nodes cost 16 MB. Those ids can be handed to a
// later run (Known; `--ids FILE` on the command line) so that a steady run
// over a million nodes a storm registered starts reporting at once instead
// of looking every node up again.
package simulate

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/internal/round"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// Modes.
const (
	Storm  = "storm"
	Steady = "steady"
	Follow = "follow"
)

// Config is one simulation.
type Config struct {
	Registrar   string
	Nodes       int
	StartIndex  int    // first node index, to run a large simulation in chunks
	Mode        string // Storm (default), Steady or Follow
	Concurrency int    // workers (and HTTP connections); default 256
	// Duration bounds a storm (no new node starts after it) and is the
	// length of the reporting phase of a steady run (default 1 minute).
	Duration time.Duration
	// UptimeInterval is how often each node reports in steady mode, which
	// sets the rate to Nodes/UptimeInterval; Rate, when set, wins. A
	// negative Rate is a closed loop: each worker reports again as soon as
	// it has its answer (the registrar's throughput, at Concurrency
	// reports in flight).
	UptimeInterval time.Duration
	Rate           float64
	// Seed names the set of simulated keys; the same seed and index give
	// the same node.
	Seed string
	// AssumeNew skips the lookups a rebooting node makes (account by key,
	// node by twin): fresh nodes create at once, and fall back to a lookup
	// on 409. Halves the requests of a first registration.
	AssumeNew bool
	// FarmName is the farm the nodes join; made by a simulated farmer when
	// it does not exist. With Farms above 1, node i joins farm i % Farms:
	// FarmName, then FarmName2, FarmName3, ... (a run given Known ids must
	// say the Farms of the run that registered them).
	FarmName string
	Farms    int
	// FollowChannel configures the follow phase (Mode Follow), run for
	// Duration with reports every UptimeInterval.
	FollowChannel *FollowConfig
	// Retries is how often a failed request (network error, 429, 5xx; see
	// client.Retryable) is tried again, with jittered backoff and at least
	// what the registrar's Retry-After asks, before the node gives up.
	Retries int
	// Timeout of one request (default 30 s).
	Timeout time.Duration
	// Progress, when set, receives a line every ProgressEvery (default 10 s).
	Progress      io.Writer
	ProgressEvery time.Duration
	// Known holds the ids of nodes registered by an earlier run with the
	// same Seed and StartIndex (Result.IDs): a node whose twin and node id
	// are known does not register again. Used in steady mode.
	Known *IDs
	// KeepIDs makes a storm return the nodes' ids in Result.IDs (steady
	// runs always do). KeepKeys keeps their keys there too (64 bytes a
	// node), for a later run in the same process: the simulator then
	// spends its CPU on requests, not on deriving keys again.
	KeepIDs, KeepKeys bool
	// Checkpoints are numbers of registered nodes at which OnCheckpoint is
	// called (by the worker whose registration reached it, while the others
	// go on), for example to read the registrar's memory as the grid grows.
	Checkpoints  []int
	OnCheckpoint func(registered int, elapsed time.Duration)
}

// IDs are the twin and node ids of nodes StartIndex, StartIndex+1, ...; 0
// where a node did not register.
type IDs struct {
	Twins, Nodes []uint64
	// keys, when kept (Config.KeepKeys), are the nodes' private keys, 64
	// bytes each, so that a later run in the same process need not derive
	// them again (a scalar multiplication each). Not saved by SaveIDs.
	keys []byte
}

// Operation names in the results.
const (
	OpAccount    = "account"     // ensure account (lookup, create)
	OpNodeLookup = "node_lookup" // GET /nodes?twin_id=
	OpNodeCreate = "node_create"
	OpUptime     = "uptime"
	OpFarm       = "farm"
)

var opOrder = []string{OpFarm, OpAccount, OpNodeLookup, OpNodeCreate, OpUptime, OpPoll}

// OpResult is the measure of one kind of operation.
type OpResult struct {
	Count  uint64  `json:"count"`
	Errors uint64  `json:"errors"`
	PerSec float64 `json:"per_s"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// Result is what a simulation measured. Its JSON form is the line `make
// bench` parses.
type Result struct {
	Mode        string `json:"mode"`
	Registrar   string `json:"registrar"`
	Nodes       int    `json:"nodes"`
	StartIndex  int    `json:"start_index"`
	Concurrency int    `json:"concurrency"`
	FarmID      uint64 `json:"farm_id"`
	// FarmIDs are the farms, FarmIDs[i % Farms] node i's.
	FarmIDs    []uint64 `json:"farm_ids,omitempty"`
	Registered uint64   `json:"registered"`
	// Known counts the nodes that did not register because their ids were
	// given (Config.Known).
	Known    uint64  `json:"known,omitempty"`
	Failed   uint64  `json:"failed"`
	ElapsedS float64 `json:"elapsed_s"`
	// RegisterS is the length of the registration phase.
	RegisterS float64 `json:"register_s"`
	// NodesPerS is registrations per second (storm, or the registration
	// phase of steady); UptimePerS the uptime reports per second of the
	// reporting phase (steady) or of the storm.
	NodesPerS  float64             `json:"nodes_per_s"`
	UptimePerS float64             `json:"uptime_per_s"`
	TargetRate float64             `json:"target_rate,omitempty"` // negative: closed loop
	Ops        map[string]OpResult `json:"ops"`
	// Errors counts failed requests by "operation status" (status 0: no
	// answer: network error or timeout).
	Errors map[string]uint64 `json:"errors"`
	// IDs are the nodes' ids (steady, or KeepIDs).
	IDs *IDs `json:"-"`
	// Follow is what the follow phase saw (Mode Follow).
	Follow *FollowResult `json:"follow,omitempty"`
}

type sim struct {
	cfg     Config
	base    *client.Client
	farmIDs []uint64
	hist    map[string]*histogram
	errMu   sync.Mutex
	errs    map[string]uint64
	reg     atomic.Uint64
	known   atomic.Uint64
	failed  atomic.Uint64
	started time.Time
	// twins and nodes hold, in steady mode or with KeepIDs, each node's ids
	// (index-StartIndex).
	twins, nodes []uint64
	// keys (KeepKeys) and knownKeys (Known.keys): private keys by index-StartIndex.
	keys, knownKeys []byte
	// checkpoints left, sorted, guarded by ckMu.
	ckMu        sync.Mutex
	checkpoints []int
	followRes   *FollowResult
}

// Run runs the simulation and returns what it measured.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Nodes <= 0 {
		return nil, errors.New("simulate: --nodes must be at least 1")
	}
	if cfg.Mode == "" {
		cfg.Mode = Storm
	}
	if cfg.Mode != Storm && cfg.Mode != Steady && cfg.Mode != Follow {
		return nil, fmt.Errorf("simulate: mode %q: want storm, steady or follow", cfg.Mode)
	}
	if cfg.Mode == Follow && (cfg.FollowChannel == nil || !doc.ValidChannelName(cfg.FollowChannel.Channel)) {
		return nil, errors.New("simulate: follow mode needs a channel to follow (--channel)")
	}
	if cfg.Farms <= 0 {
		cfg.Farms = 1
	}
	if cfg.UptimeInterval <= 0 {
		cfg.UptimeInterval = 40 * time.Minute
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 256
	}
	if cfg.Seed == "" {
		cfg.Seed = "gridnode-simulate"
	}
	if cfg.FarmName == "" {
		cfg.FarmName = "simulated"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Mode != Storm && cfg.Duration <= 0 {
		cfg.Duration = time.Minute
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 10 * time.Second
	}
	tr := &http.Transport{
		Proxy:               nil, // a bench measures the registrar, not a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Concurrency,
		MaxIdleConnsPerHost: cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   true,
	}
	defer tr.CloseIdleConnections()
	base, err := client.New(cfg.Registrar, nil, client.Options{
		HTTPClient: &http.Client{Transport: tr, Timeout: cfg.Timeout},
		UserAgent:  "gridnode-simulate",
	})
	if err != nil {
		return nil, err
	}
	s := &sim{cfg: cfg, base: base, hist: map[string]*histogram{}, errs: map[string]uint64{}}
	for _, op := range opOrder {
		s.hist[op] = &histogram{}
	}
	if err := s.farm(ctx); err != nil {
		return nil, err
	}
	res := &Result{Mode: cfg.Mode, Registrar: cfg.Registrar, Nodes: cfg.Nodes, StartIndex: cfg.StartIndex, Concurrency: cfg.Concurrency,
		FarmID: s.farmIDs[0], FarmIDs: s.farmIDs}

	if cfg.Known != nil && (len(cfg.Known.Twins) != len(cfg.Known.Nodes) || len(cfg.Known.Nodes) > cfg.Nodes) {
		return nil, fmt.Errorf("simulate: %d known twin ids and %d node ids for %d nodes", len(cfg.Known.Twins), len(cfg.Known.Nodes), cfg.Nodes)
	}
	if cfg.Mode != Storm || cfg.KeepIDs || cfg.KeepKeys {
		s.twins = make([]uint64, cfg.Nodes)
		s.nodes = make([]uint64, cfg.Nodes)
		res.IDs = &IDs{Twins: s.twins, Nodes: s.nodes}
		if cfg.KeepKeys {
			s.keys = make([]byte, cfg.Nodes*ed25519.PrivateKeySize)
			res.IDs.keys = s.keys
		}
	}
	if kn := cfg.Known; kn != nil && len(kn.keys) == len(kn.Nodes)*ed25519.PrivateKeySize {
		s.knownKeys = kn.keys
	}
	s.checkpoints = append([]int(nil), cfg.Checkpoints...)
	sort.Ints(s.checkpoints)
	s.started = time.Now()
	regElapsed := s.storm(ctx)
	res.Registered, res.Known, res.Failed = s.reg.Load(), s.known.Load(), s.failed.Load()
	res.RegisterS = regElapsed.Seconds()
	res.NodesPerS = float64(res.Registered) / regElapsed.Seconds()
	elapsed := regElapsed
	if cfg.Mode != Storm && ctx.Err() == nil {
		// Only the reporting phase counts for the uptime figures.
		s.hist[OpUptime] = &histogram{}
		rate := cfg.Rate
		if rate == 0 {
			rate = float64(cfg.Nodes) / cfg.UptimeInterval.Seconds()
		}
		var d time.Duration
		if cfg.Mode == Follow {
			d = s.follow(ctx)
			res.Follow = s.followRes
		} else {
			res.TargetRate = rate
			d = s.steady(ctx, rate)
		}
		res.UptimePerS = float64(s.hist[OpUptime].count.Load()-s.hist[OpUptime].errors.Load()) / d.Seconds()
		elapsed += d
	} else {
		h := s.hist[OpUptime]
		res.UptimePerS = float64(h.count.Load()-h.errors.Load()) / regElapsed.Seconds()
	}
	res.ElapsedS = elapsed.Seconds()
	res.Ops = map[string]OpResult{}
	for op, h := range s.hist {
		n := h.count.Load()
		if n == 0 {
			continue
		}
		q := h.quantiles(0.5, 0.9, 0.99)
		span := regElapsed
		if (op == OpUptime || op == OpPoll) && cfg.Mode != Storm {
			span = elapsed - regElapsed
		}
		if op == OpFarm {
			span = 0
		}
		r := OpResult{Count: n, Errors: h.errors.Load(), P50MS: round.Millis(q[0]), P90MS: round.Millis(q[1]), P99MS: round.Millis(q[2]), MaxMS: round.Millis(time.Duration(h.max.Load()))}
		if span > 0 {
			r.PerSec = float64(n) / span.Seconds()
		}
		res.Ops[op] = r
	}
	res.Errors = s.errs
	return res, ctx.Err()
}

// nodeKey is node i's key: known, or derived.
func (s *sim) nodeKey(i int) ed25519.PrivateKey {
	k := i - s.cfg.StartIndex
	if s.knownKeys != nil && k >= 0 && (k+1)*ed25519.PrivateKeySize <= len(s.knownKeys) {
		if key := s.knownKeys[k*ed25519.PrivateKeySize : (k+1)*ed25519.PrivateKeySize]; !isZero(key) {
			// A copy, not a slice of the big array: ed25519.Sign caches
			// each private key's expansion under a weak pointer to the
			// key's memory, and the runtime keeps those in a sorted list
			// per span, so a million keys in one allocation make every
			// Sign walk a list of up to a million (measured: 35 % of the
			// simulator's CPU, and a tenth of its throughput).
			return ed25519.PrivateKey(append([]byte(nil), key...))
		}
	}
	key := s.key(i)
	if s.keys != nil && k >= 0 && k < s.cfg.Nodes {
		copy(s.keys[k*ed25519.PrivateKeySize:], key)
	}
	return key
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// key derives node i's key from the seed: SHA-256(seed ":" i) is its seed.
func (s *sim) key(i int) ed25519.PrivateKey {
	var buf [128]byte
	b := append(buf[:0], s.cfg.Seed...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(i), 10)
	seed := sha256.Sum256(b)
	return ed25519.NewKeyFromSeed(seed[:])
}

// call times f as operation op, retrying it on network errors, 429 and 5xx.
func (s *sim) call(ctx context.Context, op string, f func() error) error {
	return s.callSince(ctx, op, time.Time{}, f)
}

// callSince is call, the first attempt timed from since when it is earlier
// (the time the operation was due).
func (s *sim) callSince(ctx context.Context, op string, since time.Time, f func() error) error {
	h := s.hist[op]
	attempt := 0
	return client.Retry(ctx, retryPolicy, s.cfg.Retries+1, func() error {
		start := time.Now()
		err := f()
		if attempt == 0 && !since.IsZero() && since.Before(start) {
			start = since
		}
		attempt++
		h.record(time.Since(start), err != nil)
		if err != nil && ctx.Err() == nil {
			s.errMu.Lock()
			s.errs[op+" "+strconv.Itoa(client.StatusOf(err))]++
			s.errMu.Unlock()
		}
		return err
	})
}

// retryPolicy spreads the retries of many virtual nodes (full jitter), as
// a grid's nodes do; a registrar's Retry-After is honoured on top of it
// (client.Retry).
var retryPolicy = backoff.Policy{Base: 100 * time.Millisecond, Max: 10 * time.Second, Jitter: true}

// farm finds or makes the farms the nodes join, owned by a simulated farmer.
func (s *sim) farm(ctx context.Context) error {
	farmer := s.base.WithKey(s.key(-1))
	for j := range s.cfg.Farms {
		name := s.cfg.FarmName
		if j > 0 {
			name += strconv.Itoa(j + 1)
		}
		if err := s.call(ctx, OpFarm, func() error {
			farms, err := farmer.Farms(ctx, client.FarmFilter{FarmName: name})
			if err != nil && !client.IsNotFound(err) {
				return fmt.Errorf("simulate: looking up farm %q: %w", name, err)
			}
			for _, f := range farms {
				if f.FarmName == name {
					s.farmIDs = append(s.farmIDs, f.FarmID)
					return nil
				}
			}
			if farmer.Twin() == 0 {
				if _, err := farmer.EnsureAccount(ctx); err != nil {
					return fmt.Errorf("simulate: farmer account: %w", err)
				}
			}
			// A valid-looking Stellar address: G and 55 more capitals/digits.
			id, err := farmer.CreateFarm(ctx, api.CreateFarm{FarmName: name, StellarAddress: "G" + strings.Repeat("A", 55)})
			if err != nil {
				return fmt.Errorf("simulate: creating farm %q: %w", name, err)
			}
			s.farmIDs = append(s.farmIDs, id)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// farmOf is the farm node i joins.
func (s *sim) farmOf(i int) uint64 { return s.farmIDs[i%len(s.farmIDs)] }

// nodeBody is what simulated node i reports: plausible, and different per node.
func (s *sim) nodeBody(i int) api.CreateNode {
	x := uint64(i)
	return api.CreateNode{
		FarmID:    s.farmOf(i),
		Resources: api.Resources{CRU: 4 << (x % 5), MRU: (8 << (x % 6)) << 30, SRU: (256 << (x % 4)) << 30, HRU: (x % 3) * (4 << 40)},
		Location:  api.Location{Country: "unknown", City: "unknown", Latitude: "unknown", Longitude: "unknown"},
		Interfaces: []api.Interface{{
			Name: "eth0",
			Mac:  fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(x>>24), byte(x>>16), byte(x>>8), byte(x)),
			IPs:  api.IPs{fmt.Sprintf("10.%d.%d.%d", byte(x>>16), byte(x>>8), byte(x))},
		}},
		Virtualized:  true,
		SerialNumber: "sim-" + strconv.Itoa(i),
	}
}

// register does what a booting node does, and reports uptime once.
func (s *sim) register(ctx context.Context, i int) error {
	c := s.base.WithKey(s.nodeKey(i))
	var twin uint64
	err := s.call(ctx, OpAccount, func() error {
		var a api.Account
		var err error
		if s.cfg.AssumeNew {
			a, err = c.CreateAccount(ctx)
			if client.StatusOf(err) == http.StatusConflict {
				a, err = c.EnsureAccount(ctx)
			}
		} else {
			a, err = c.EnsureAccount(ctx)
		}
		twin = a.TwinID
		return err
	})
	if err != nil {
		return err
	}
	var nodeID uint64
	if !s.cfg.AssumeNew {
		err = s.call(ctx, OpNodeLookup, func() error {
			n, err := c.NodeByTwin(ctx, twin)
			if errors.Is(err, client.ErrNoNode) {
				return nil
			}
			nodeID = n.NodeID
			return err
		})
		if err != nil {
			return err
		}
	}
	if nodeID == 0 {
		err = s.call(ctx, OpNodeCreate, func() error {
			id, err := c.CreateNode(ctx, s.nodeBody(i))
			if client.StatusOf(err) == http.StatusConflict {
				n, lerr := c.NodeByTwin(ctx, twin)
				if lerr == nil {
					id, err = n.NodeID, nil
				}
			}
			nodeID = id
			return err
		})
		if err != nil {
			return err
		}
	}
	if s.nodes != nil {
		s.twins[i-s.cfg.StartIndex] = twin
		s.nodes[i-s.cfg.StartIndex] = nodeID
	}
	var release api.OSState
	if f := s.cfg.FollowChannel; f != nil && s.cfg.Mode == Follow {
		release = api.OSState{OSVersion: f.from(), Channel: f.Channel} // a follower's first report says what it runs
	}
	return s.call(ctx, OpUptime, func() error {
		return c.ReportUptimeOS(ctx, nodeID, time.Since(s.started)+time.Minute, release)
	})
}

// storm registers nodes StartIndex..StartIndex+Nodes-1 with Concurrency
// workers and returns how long it took.
func (s *sim) storm(ctx context.Context) time.Duration {
	// Once Duration is up no node starts; those under way finish.
	starting := ctx
	if s.cfg.Mode == Storm && s.cfg.Duration > 0 {
		var cancel context.CancelFunc
		starting, cancel = context.WithTimeout(ctx, s.cfg.Duration)
		defer cancel()
	}
	start := time.Now()
	var next atomic.Int64
	stop := s.progress(func(el time.Duration) string {
		r := s.reg.Load()
		return fmt.Sprintf("registered %d/%d nodes, %d failed, %.0f nodes/s", r, s.cfg.Nodes, s.failed.Load(), float64(r)/el.Seconds())
	})
	var wg sync.WaitGroup
	for range min(s.cfg.Concurrency, s.cfg.Nodes) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for starting.Err() == nil {
				k := int(next.Add(1) - 1)
				if k >= s.cfg.Nodes {
					return
				}
				if kn := s.cfg.Known; kn != nil && k < len(kn.Nodes) && kn.Nodes[k] != 0 && kn.Twins[k] != 0 {
					if s.nodes != nil {
						s.twins[k], s.nodes[k] = kn.Twins[k], kn.Nodes[k]
					}
					if s.keys != nil && s.knownKeys != nil {
						copy(s.keys[k*ed25519.PrivateKeySize:(k+1)*ed25519.PrivateKeySize], s.knownKeys[k*ed25519.PrivateKeySize:])
					}
					s.known.Add(1)
					continue
				}
				if err := s.register(ctx, s.cfg.StartIndex+k); err != nil {
					s.failed.Add(1)
				} else {
					s.checkpoint(int(s.reg.Add(1)), start)
				}
			}
		}()
	}
	wg.Wait()
	stop()
	return time.Since(start)
}

// checkpoint calls OnCheckpoint when registered reaches the next checkpoint.
func (s *sim) checkpoint(registered int, start time.Time) {
	if s.cfg.OnCheckpoint == nil {
		return
	}
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	for len(s.checkpoints) > 0 && registered >= s.checkpoints[0] {
		s.checkpoints = s.checkpoints[1:]
		s.cfg.OnCheckpoint(registered, time.Since(start))
	}
}

// steady sends uptime reports at rate per second, round robin over the
// registered nodes, for Duration, and returns how long it ran. A negative
// rate is a closed loop: each worker sends its next report as soon as the
// last one is answered.
//
// When paced, report n is due at start + n/rate, and its latency counts from
// then, not from when a worker got to send it: when the registrar falls
// behind, the time reports wait for a free worker is in the percentiles (a
// grid's nodes do not wait for each other), rather than hidden by the
// simulator sending less.
func (s *sim) steady(parent context.Context, rate float64) time.Duration {
	// Requests in flight when the time is up finish under parent: they
	// are not failures.
	ctx, cancel := context.WithTimeout(parent, s.cfg.Duration)
	defer cancel()
	type report struct {
		k   int
		due time.Time // zero in a closed loop
	}
	work := make(chan report, s.cfg.Concurrency)
	start := time.Now()
	h := s.hist[OpUptime]
	target := fmt.Sprintf("target %.0f/s", rate)
	if rate < 0 {
		target = "closed loop"
	}
	stop := s.progress(func(el time.Duration) string {
		return fmt.Sprintf("%d uptime reports, %.0f/s (%s)", h.count.Load(), float64(h.count.Load())/el.Seconds(), target)
	})
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				k := r.k
				if s.nodes[k] == 0 {
					continue // its registration failed
				}
				c := s.base.WithKey(s.nodeKey(s.cfg.StartIndex + k))
				c.SetTwin(s.twins[k])
				_ = s.callSince(parent, OpUptime, r.due, func() error {
					return c.ReportUptime(parent, s.nodes[k], time.Since(s.started)+time.Minute)
				})
			}
		}()
	}
	var n int64
	next := func() report { return report{k: int(n % int64(s.cfg.Nodes))} }
	if rate < 0 {
		for ctx.Err() == nil {
			select {
			case work <- next():
				n++
			case <-ctx.Done():
			}
		}
	} else {
		// Pace: every tick, hand out the reports that have come due, up
		// to the last one due before the end (a pacer late to notice the
		// end must not send more than Duration·rate).
		last := int64(math.Ceil(s.cfg.Duration.Seconds()*rate)) - 1
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
	pace:
		for ctx.Err() == nil {
			for due := min(int64(time.Since(start).Seconds()*rate), last); n <= due; {
				r := next()
				r.due = start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
				select {
				case work <- r:
					n++
				case <-ctx.Done():
					break pace
				}
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}
	close(work)
	wg.Wait()
	stop()
	return time.Since(start)
}

// progress prints line() every ProgressEvery until the returned stop is called.
func (s *sim) progress(line func(elapsed time.Duration) string) (stop func()) {
	if s.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(s.cfg.Progress, "simulate: %s\n", line(time.Since(start)))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// WriteText prints a result for people: a summary, a table of operations
// with latency percentiles, and errors by status.
func (r *Result) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%s: %d nodes (from index %d) against %s, %d workers, farm %d\n", r.Mode, r.Nodes, r.StartIndex, r.Registrar, r.Concurrency, r.FarmID)
	fmt.Fprintf(w, "registered %d, failed %d, %.1f nodes/s in %.2fs", r.Registered, r.Failed, r.NodesPerS, r.RegisterS)
	if r.Known > 0 {
		fmt.Fprintf(w, " (%d known, not registered again)", r.Known)
	}
	if r.Mode == Steady {
		if r.TargetRate < 0 {
			fmt.Fprintf(w, "; uptime reports %.1f/s (closed loop)", r.UptimePerS)
		} else {
			fmt.Fprintf(w, "; uptime reports %.1f/s (target %.1f/s)", r.UptimePerS, r.TargetRate)
		}
	}
	fmt.Fprintf(w, "; %.2fs in all\n", r.ElapsedS)
	if r.Follow != nil {
		writeFollow(w, r.Follow)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tcount\terrors\tper s\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
	for _, op := range opOrder {
		o, ok := r.Ops[op]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", op, o.Count, o.Errors, o.PerSec, o.P50MS, o.P90MS, o.P99MS, o.MaxMS)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintln(w, "\nerrors by operation and status (0: no answer):")
		for _, k := range keys {
			fmt.Fprintf(w, "  %s: %d\n", k, r.Errors[k])
		}
	}
	return nil
}

// WriteJSON writes the result as one JSON line.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
