package simulate

import (
	"container/heap"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/gate"
)

// Follow mode: after registering (or being given their ids), the nodes
// follow a release channel as a node's upgrade module does. Each polls the
// channel every Poll (±10 %, with its ETag), accepts a document as a node
// does (doc.Accept's checks: its release keys — checked once per document
// here, not once per node —, a sequence not below the last it accepted,
// not expired),
// asks upgrade/gate whether it is in the rollout (its node id — the base64
// public key — and farm, the registrar's hold, the clock), and if so
// "upgrades": its next uptime report, sent at once, carries the new
// os_version. Every node reports every UptimeInterval (±10 %) with the
// version it runs. A share of the nodes that upgrade (StopShare, picked by
// a hash of the seed and the index) stop reporting and polling after that
// first report: a release that kills the machines it reaches.
//
// Events are kept in one heap ordered by when they are due, handed to
// Concurrency workers: a million nodes cost their state (about 40 bytes
// each), not a goroutine each.

// FollowConfig configures the follow phase (Config.Mode Follow).
type FollowConfig struct {
	Channel string
	// Keys verify documents as nodes do; none: documents are opened
	// without checking signatures (and a node "accepts" what it reads).
	Keys []doc.PublicKey
	// From is the version the nodes run at the start (default "0").
	From string
	// Poll is how often a node polls the channel (default 1 min).
	Poll time.Duration
	// StopShare of the nodes that upgrade stop for good after their first
	// report on the new version.
	StopShare float64
	// OnUpgrade is called once a node's first report on a new version was
	// accepted by the registrar.
	OnUpgrade func(Upgrade)
	// OnHold is called when a node sees a hold other than the one nodes saw
	// before it.
	OnHold func(doc.Hold)
}

func (f *FollowConfig) from() string {
	if f.From == "" {
		return "0"
	}
	return f.From
}

// Upgrade is a node that moved to a version.
type Upgrade struct {
	Index    int // the node's index
	Farm     uint64
	Version  string
	Canary   bool // in as a canary farm's node
	Stopping bool // it reports no more
	At       time.Time
}

// FollowResult is what the follow phase saw.
type FollowResult struct {
	Polls       uint64 `json:"polls"`
	NotModified uint64 `json:"not_modified"` // polls answered 304
	Refused     uint64 `json:"refused"`      // documents a node refused (doc.Accept)
	Upgraded    uint64 `json:"upgraded"`     // nodes that moved to a new version
	Canary      uint64 `json:"canary"`       // of them, as a canary farm's node
	Stopped     uint64 `json:"stopped"`      // of them, stopped after their first report
	// Versions is how many nodes run each version at the end.
	Versions map[string]int `json:"versions"`
	// Hold is the registrar's last hold the nodes saw.
	Hold doc.Hold `json:"hold"`
}

// Operation names of the follow phase.
const (
	OpPoll = "poll"
)

// event kinds
const (
	evReport uint8 = iota
	evPoll
)

type event struct {
	due  time.Time
	k    int32 // node index - StartIndex
	kind uint8
}

type events []event

func (e events) Len() int           { return len(e) }
func (e events) Less(i, j int) bool { return e[i].due.Before(e[j].due) }
func (e events) Swap(i, j int)      { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)        { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

// answer is a channel state the nodes polled, kept once per ETag.
type answer struct {
	state doc.ChannelState
	c     *doc.Channel // nil: refused (bad signature, other channel)
}

// follower is the follow phase's state.
type follower struct {
	s   *sim
	cfg FollowConfig
	// per node: version (index into versions), last accepted sequence,
	// ETag, stopped.
	mu                                                 sync.Mutex
	versions                                           []string
	version                                            []uint16
	seq                                                []uint64
	etag                                               []string
	pubs                                               []string
	stopped                                            []bool
	answers                                            map[string]*answer
	lastHold                                           doc.Hold
	heapMu                                             sync.Mutex
	queue                                              events
	wake                                               chan struct{}
	res                                                FollowResult
	upgraded, canary, stoppedN, polls, notMod, refused atomic.Uint64
}

// follow runs the follow phase for Duration and returns how long it ran.
func (s *sim) follow(parent context.Context) time.Duration {
	ctx, cancel := context.WithTimeout(parent, s.cfg.Duration)
	defer cancel()
	f := s.follower()
	start := time.Now()
	iv := s.cfg.UptimeInterval
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 1))
	for k := range s.cfg.Nodes {
		if s.nodes[k] == 0 {
			continue // its registration failed
		}
		// Spread the first events over an interval, as booted nodes are.
		f.push(event{due: start.Add(time.Duration(rng.Float64() * float64(iv))), k: int32(k), kind: evReport})
		f.push(event{due: start.Add(time.Duration(rng.Float64() * float64(f.cfg.Poll))), k: int32(k), kind: evPoll})
	}
	stop := s.progress(func(el time.Duration) string {
		return fmt.Sprintf("%d polls (%d not modified), %d uptime reports, %d upgraded, %d stopped",
			f.polls.Load(), f.notMod.Load(), s.hist[OpUptime].count.Load(), f.upgraded.Load(), f.stoppedN.Load())
	})
	work := make(chan event, s.cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range s.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)+2))
			for e := range work {
				f.handle(ctx, e, rng)
			}
		}()
	}
	f.dispatch(ctx, work)
	close(work)
	wg.Wait()
	stop()
	f.finish()
	s.followRes = &f.res
	return time.Since(start)
}

func (s *sim) follower() *follower {
	cfg := *s.cfg.FollowChannel
	cfg.From = cfg.from()
	if cfg.Poll <= 0 {
		cfg.Poll = time.Minute
	}
	n := s.cfg.Nodes
	return &follower{s: s, cfg: cfg, versions: []string{cfg.From}, version: make([]uint16, n), seq: make([]uint64, n),
		etag: make([]string, n), pubs: make([]string, n), stopped: make([]bool, n), answers: map[string]*answer{}, wake: make(chan struct{}, 1)}
}

func (f *follower) push(e event) {
	f.heapMu.Lock()
	heap.Push(&f.queue, e)
	first := f.queue[0].k == e.k && f.queue[0].due.Equal(e.due)
	f.heapMu.Unlock()
	if first {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// dispatch hands events to the workers as they come due, until ctx ends.
func (f *follower) dispatch(ctx context.Context, work chan<- event) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		f.heapMu.Lock()
		var next event
		wait := time.Hour
		if len(f.queue) > 0 {
			next = f.queue[0]
			if wait = time.Until(next.due); wait <= 0 {
				heap.Pop(&f.queue)
			}
		}
		f.heapMu.Unlock()
		if wait <= 0 {
			select {
			case work <- next:
			case <-ctx.Done():
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-f.wake:
		case <-timer.C:
		}
	}
}

// jittered is d ±10 %.
func jittered(d time.Duration, rng *rand.Rand) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rng.Float64()))
}

func (f *follower) handle(ctx context.Context, e event, rng *rand.Rand) {
	k := int(e.k)
	f.mu.Lock()
	stopped := f.stopped[k]
	f.mu.Unlock()
	if stopped {
		return // it reports and polls no more
	}
	switch e.kind {
	case evPoll:
		f.poll(ctx, k, e.due)
		f.push(event{due: time.Now().Add(jittered(f.cfg.Poll, rng)), k: e.k, kind: evPoll})
	case evReport:
		f.report(ctx, k, e.due, false)
		f.push(event{due: time.Now().Add(jittered(f.s.cfg.UptimeInterval, rng)), k: e.k, kind: evReport})
	}
}

// poll is node k's poll of the channel and its decision.
func (f *follower) poll(ctx context.Context, k int, due time.Time) {
	s := f.s
	f.mu.Lock()
	etag := f.etag[k]
	f.mu.Unlock()
	var a *client.ChannelAnswer
	err := s.callSince(ctx, OpPoll, due, func() error {
		var err error
		a, err = s.base.Channel(ctx, f.cfg.Channel, etag)
		if client.IsNotFound(err) {
			return nil // no document yet
		}
		return err
	})
	f.polls.Add(1)
	if err != nil || a == nil {
		return
	}
	if a.NotModified {
		f.notMod.Add(1)
	}
	ans := f.answer(a)
	if ans == nil {
		// A 304 for a document no longer kept here: ask for it whole next time.
		f.mu.Lock()
		f.etag[k] = ""
		f.mu.Unlock()
		return
	}
	now := time.Now()
	c := ans.c
	if c == nil || c.Sequence < f.seqOf(k) || !now.Before(c.Expires) {
		f.refused.Add(1) // badly signed, replayed or expired
		return
	}
	node := gate.Node{ID: f.pub(k), Farm: s.farmOf(s.cfg.StartIndex + k)}
	f.mu.Lock()
	newHold := !sameHold(f.lastHold, ans.state.Hold)
	f.etag[k], f.lastHold, f.seq[k] = a.ETag, ans.state.Hold, c.Sequence
	if newHold && f.cfg.OnHold != nil {
		f.cfg.OnHold(ans.state.Hold)
	}
	if f.versions[f.version[k]] == c.Version {
		f.mu.Unlock()
		return
	}
	d := gate.Allowed(c, ans.state.Hold, node, now)
	if !d.In {
		f.mu.Unlock()
		return
	}
	f.version[k] = f.versionIndex(c.Version)
	stopping := s.stops(s.cfg.StartIndex+k, f.cfg.StopShare)
	f.mu.Unlock()
	// The new release reports at once (its trial's health check).
	if f.report(ctx, k, time.Now(), stopping) {
		f.upgraded.Add(1)
		if d.Canary {
			f.canary.Add(1)
		}
		if stopping {
			f.stoppedN.Add(1)
		}
		if f.cfg.OnUpgrade != nil {
			f.cfg.OnUpgrade(Upgrade{Index: s.cfg.StartIndex + k, Farm: node.Farm, Version: c.Version, Canary: d.Canary, Stopping: stopping, At: time.Now()})
		}
	}
}

// answer decodes (once per ETag) what a poll got.
func (f *follower) answer(a *client.ChannelAnswer) *answer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ans, ok := f.answers[a.ETag]; ok || a.NotModified {
		return ans
	}
	ans := &answer{state: a.State}
	// The signature is checked here once per document; each node's
	// sequence and expiry checks are its own (Accept in poll).
	if c, err := doc.OpenChannel(a.State.Document, f.cfg.Keys); err == nil && c.Channel == f.cfg.Channel {
		ans.c = c
	}
	if len(f.answers) > 64 {
		clear(f.answers) // old documents and holds nobody holds any more
	}
	f.answers[a.ETag] = ans
	return ans
}

func (f *follower) versionIndex(v string) uint16 {
	for i, x := range f.versions {
		if x == v {
			return uint16(i)
		}
	}
	f.versions = append(f.versions, v)
	return uint16(len(f.versions) - 1)
}

// report sends node k's uptime report with the version it runs; stop makes
// it the node's last. It says whether the registrar took it.
func (f *follower) report(ctx context.Context, k int, due time.Time, stop bool) bool {
	s := f.s
	f.mu.Lock()
	v := f.versions[f.version[k]]
	if stop {
		f.stopped[k] = true
	}
	f.mu.Unlock()
	c := s.base.WithKey(s.nodeKey(s.cfg.StartIndex + k))
	c.SetTwin(s.twins[k])
	err := s.callSince(ctx, OpUptime, due, func() error {
		return c.ReportUptimeOS(ctx, s.nodes[k], time.Since(s.started)+time.Minute, api.OSState{OSVersion: v, Channel: f.cfg.Channel})
	})
	return err == nil
}

func (f *follower) finish() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.res = FollowResult{Polls: f.polls.Load(), NotModified: f.notMod.Load(), Refused: f.refused.Load(), Upgraded: f.upgraded.Load(),
		Canary: f.canary.Load(), Stopped: f.stoppedN.Load(), Versions: map[string]int{}, Hold: f.lastHold}
	for k, v := range f.version {
		if f.s.nodes[k] != 0 {
			f.res.Versions[f.versions[v]]++
		}
	}
}

// stops says whether node i is one of the share that stops once upgraded:
// a hash of the seed and the index, the same in every run.
func (s *sim) stops(i int, share float64) bool {
	if share <= 0 {
		return false
	}
	h := sha256.Sum256([]byte(s.cfg.Seed + ":stop:" + fmt.Sprint(i)))
	return float64(binary.BigEndian.Uint64(h[:8])>>11)/(1<<53) < share
}

func sameHold(a, b doc.Hold) bool {
	return a.Paused == b.Paused && (a.ShareCapPPM == nil) == (b.ShareCapPPM == nil) &&
		(a.ShareCapPPM == nil || *a.ShareCapPPM == *b.ShareCapPPM)
}

func (f *follower) seqOf(k int) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seq[k]
}

// pub is node k's id as the gate knows it, its public key in base64,
// derived once.
func (f *follower) pub(k int) string {
	f.mu.Lock()
	p := f.pubs[k]
	f.mu.Unlock()
	if p == "" {
		p = api.PublicKey(f.s.nodeKey(f.s.cfg.StartIndex + k).Public().(ed25519.PublicKey))
		f.mu.Lock()
		f.pubs[k] = p
		f.mu.Unlock()
	}
	return p
}

func writeFollow(w io.Writer, r *FollowResult) {
	fmt.Fprintf(w, "follow: %d polls (%d not modified), %d refused; %d upgraded (%d as canary farms' nodes), %d of them stopped\n",
		r.Polls, r.NotModified, r.Refused, r.Upgraded, r.Canary, r.Stopped)
	vs := make([]string, 0, len(r.Versions))
	for v := range r.Versions {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	for _, v := range vs {
		fmt.Fprintf(w, "  version %s: %d nodes\n", v, r.Versions[v])
	}
	hold := "none"
	if r.Hold.Paused {
		hold = "paused"
	}
	if r.Hold.ShareCapPPM != nil {
		hold += fmt.Sprintf(", share capped at %d ppm", *r.Hold.ShareCapPPM)
	}
	fmt.Fprintf(w, "  last hold seen: %s\n", hold)
}
