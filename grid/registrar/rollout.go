package registrar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/gate"
)

// Rollouts (issue 13): the registrar counts each channel's nodes by the
// version they report, and halts a rollout by itself when the nodes that
// took its version go offline or roll back more than the nodes that did
// not. The admin twin pauses and resumes a rollout. Every hold only holds
// a rollout back (doc.Hold is a cap on the signed share); only a newly
// signed document moves one forward again.
//
// Defaults (Config): nodes report every ReportInterval (40 min, the
// nodes' default); a node is offline after 1.5 intervals without a report;
// each channel is evaluated every quarter interval, so a wave whose nodes
// stop reporting is halted within 1.75 intervals of their last report.

// Rollout defaults.
const (
	defaultReportInterval = api.OnlineWindow
	defaultHaltShare      = 0.1
	defaultHaltMinNodes   = 5
)

// offlineAfter is how long a node may go without reporting before a
// rollout counts it offline: one interval and half of one for jitter and
// retries.
func (s *Server) offlineAfter() time.Duration { return s.cfg.ReportInterval * 3 / 2 }

// rollouts keeps the last counts of each channel, for the status route.
type rollouts struct {
	mu     sync.Mutex
	counts map[string]rolloutCounts
	kickc  chan struct{}
}

type rolloutCounts struct {
	sequence uint64
	nodes    api.RolloutNodes
}

func newRollouts() *rollouts {
	return &rollouts{counts: map[string]rolloutCounts{}, kickc: make(chan struct{}, 1)}
}

// kick asks the evaluator to run now (a new document, a pause).
func (r *rollouts) kick() {
	select {
	case r.kickc <- struct{}{}:
	default:
	}
}

func (r *rollouts) set(name string, seq uint64, n api.RolloutNodes) {
	r.mu.Lock()
	r.counts[name] = rolloutCounts{seq, n}
	r.mu.Unlock()
}

func (r *rollouts) get(name string, seq uint64) *api.RolloutNodes {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.counts[name]
	if !ok || c.sequence != seq {
		return nil
	}
	return &c.nodes
}

// evaluator counts every channel's nodes and halts rollouts, every
// quarter report interval and when kicked, until the server closes.
func (s *Server) evaluator() {
	defer s.wg.Done()
	every := max(s.cfg.ReportInterval/4, 50*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), max(every, 30*time.Second))
		if err := s.evaluateAll(ctx); err != nil {
			s.log.Warn("evaluating rollouts", "err", err)
		}
		cancel()
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.rollouts.kickc:
		}
	}
}

func (s *Server) evaluateAll(ctx context.Context) error {
	chans, err := s.st.Channels(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, ch := range chans {
		if err := s.evaluate(ctx, ch); err != nil {
			errs = append(errs, fmt.Errorf("channel %s: %w", ch.Name, err))
		}
	}
	return errors.Join(errs...)
}

// evaluate counts channel ch's nodes and halts its rollout when the nodes
// that took its version fare worse than the threshold allows.
func (s *Server) evaluate(ctx context.Context, ch store.Channel) error {
	c, err := doc.OpenChannel(ch.Document, nil)
	if err != nil {
		return err
	}
	now := store.Stamp(s.now())
	nodes, err := s.st.RolloutCounts(ctx, store.RolloutQuery{Channel: ch.Name, Version: c.Version,
		OnlineSince: now.Add(-s.offlineAfter()), Since: ch.StoredAt})
	if err != nil {
		return err
	}
	nodes.At = now
	s.rollouts.set(ch.Name, ch.Sequence, nodes)
	if !ch.Hold.HaltAt.IsZero() {
		return nil // halted once: until a new document
	}
	reason := haltReason(c.Version, nodes, s.cfg.HaltShare, s.cfg.HaltMinNodes)
	if reason == "" {
		return nil
	}
	held, err := s.updateHold(ctx, ch.Name, func(cur store.Channel, cd *doc.Channel) (store.Hold, bool) {
		if cur.Sequence != ch.Sequence || !cur.Hold.HaltAt.IsZero() {
			return cur.Hold, false // a new document, or another replica halted it
		}
		h := cur.Hold
		capShare(&h, previousWaveShare(cd, now))
		h.HaltAt, h.HaltReason = now, reason
		return h, true
	})
	if err != nil {
		return err
	}
	if held.Hold.HaltAt.Equal(now) {
		s.log.Warn("rollout halted", "channel", ch.Name, "sequence", ch.Sequence, "version", c.Version,
			"share_cap_ppm", *held.Hold.ShareCap, "reason", reason)
	}
	return nil
}

// haltReason says why a rollout of version must halt given its nodes, or
// "" when it may go on: at least minNodes took the version, and the share
// of them that went offline or rolled back exceeds the share of the other
// nodes that went offline (the baseline: power cuts, farmers' maintenance)
// by more than threshold.
func haltReason(version string, n api.RolloutNodes, threshold float64, minNodes int) string {
	if n.Upgraded == 0 || n.Upgraded < int64(minNodes) {
		return ""
	}
	bad := float64(n.UpgradedOffline+n.RolledBack) / float64(n.Upgraded)
	base := 0.0
	if n.Baseline > 0 {
		base = float64(n.BaselineOffline) / float64(n.Baseline)
	}
	if bad-base <= threshold {
		return ""
	}
	return fmt.Sprintf("%d of the %d nodes that took %s went offline (%d) or rolled back (%d): %.1f %%, against %.1f %% offline among the %d nodes that did not; more than %.1f points worse",
		n.UpgradedOffline+n.RolledBack, n.Upgraded, version, n.UpgradedOffline, n.RolledBack, bad*100, base*100, n.Baseline, threshold*100)
}

// previousWaveShare is the share of the wave before the one in force at
// now (0 in the first wave): where a halted rollout is held.
func previousWaveShare(c *doc.Channel, now time.Time) uint32 {
	prev, cur := uint32(0), uint32(0)
	for _, w := range c.Waves {
		if now.Before(w.At) {
			break
		}
		prev, cur = cur, w.SharePPM
	}
	return prev
}

// capShare lowers h's cap to share (a hold never raises one).
func capShare(h *store.Hold, share uint32) {
	if h.ShareCap == nil || share < *h.ShareCap {
		h.ShareCap = &share
	}
}

// errBusy: a channel's hold kept changing under a write of it.
var errBusy = errors.New("the channel's hold kept changing under this write; try again")

// updateHold reads channel name, lets f decide its new hold, and writes it
// if nothing else wrote the channel meanwhile (else reads and decides
// again): pauses, resumes and halts from any replica never undo each other.
func (s *Server) updateHold(ctx context.Context, name string, f func(store.Channel, *doc.Channel) (store.Hold, bool)) (store.Channel, error) {
	for range 5 {
		cur, err := s.st.Channel(ctx, name)
		if err != nil {
			return cur, err
		}
		c, err := doc.OpenChannel(cur.Document, nil)
		if err != nil {
			return cur, err
		}
		h, change := f(cur, c)
		if !change {
			return cur, nil
		}
		got, err := s.st.SetHold(ctx, name, cur.Revision, h)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return got, err
		}
		s.channels.put(got)
		return got, nil
	}
	return store.Channel{}, errBusy
}

// channelStatus is ch's rollout as the status route answers it.
func (s *Server) channelStatus(ch store.Channel) api.ChannelStatus {
	now := s.now()
	hold := wireHold(ch.Hold)
	st := api.ChannelStatus{Channel: ch.Name, Sequence: ch.Sequence, Version: ch.Version, StoredAt: ch.StoredAt, Hold: hold,
		Nodes: s.rollouts.get(ch.Name, ch.Sequence)}
	if c, err := doc.OpenChannel(ch.Document, nil); err == nil {
		st.Release, st.Expires, st.Waves = c.Release, c.Expires, len(c.Waves)
		for i, w := range c.Waves {
			if now.Before(w.At) {
				at := w.At
				st.NextWave = &at
				break
			}
			st.Wave, st.WaveSharePPM = i+1, w.SharePPM
		}
		st.SharePPM = gate.Share(c, hold, now)
	}
	if ch.Hold.Paused {
		st.Pause = &api.HoldNote{At: ch.Hold.PauseAt, Reason: ch.Hold.PauseReason, Twin: ch.Hold.PauseBy}
	}
	if !ch.Hold.HaltAt.IsZero() {
		st.Halt = &api.HoldNote{At: ch.Hold.HaltAt, Reason: ch.Hold.HaltReason}
	}
	return st
}

func (s *Server) replyStatus(w http.ResponseWriter, r *http.Request, ch store.Channel) {
	reply(w, http.StatusOK, s.channelStatus(ch))
}

// channelStatusRoute is GET /channels/{name}/status (public: counts only,
// from memory).
func (s *Server) channelStatusRoute(w http.ResponseWriter, r *http.Request) {
	if snap, ok := s.polled(w, r); ok {
		s.replyStatus(w, r, snap.ch)
	}
}

// pauseChannel is POST /channels/{name}/pause (admin twin): the rollout is
// capped at the share it reached and no node not yet in it takes the
// version, canary farms included.
func (s *Server) pauseChannel(w http.ResponseWriter, r *http.Request) {
	name, body, signer, ok := s.adminChannel(w, r, "pause a rollout")
	if !ok {
		return
	}
	var req api.PauseRequest
	if len(bytes.TrimSpace(body)) > 0 && !decode(w, body, &req) {
		return
	}
	if len(req.Reason) > 200 || !printableText(req.Reason) {
		fail(w, http.StatusBadRequest, "invalid reason: at most 200 printable characters")
		return
	}
	if req.Reason == "" {
		req.Reason = "paused by twin " + strconv.FormatUint(signer, 10)
	}
	now := store.Stamp(s.now())
	ch, err := s.updateHold(r.Context(), name, func(cur store.Channel, c *doc.Channel) (store.Hold, bool) {
		if cur.Hold.Paused {
			return cur.Hold, false
		}
		h := cur.Hold
		capShare(&h, gate.Share(c, wireHold(cur.Hold), now))
		h.Paused, h.PauseAt, h.PauseBy, h.PauseReason = true, now, signer, req.Reason
		return h, true
	})
	s.holdAnswer(w, r, name, ch, err, "paused")
}

// resumeChannel is POST /channels/{name}/resume (admin twin): the pause is
// lifted, the cap it set stays.
func (s *Server) resumeChannel(w http.ResponseWriter, r *http.Request) {
	name, _, _, ok := s.adminChannel(w, r, "resume a rollout")
	if !ok {
		return
	}
	ch, err := s.updateHold(r.Context(), name, func(cur store.Channel, _ *doc.Channel) (store.Hold, bool) {
		if !cur.Hold.Paused {
			return cur.Hold, false
		}
		h := cur.Hold
		h.Paused, h.PauseAt, h.PauseBy, h.PauseReason = false, time.Time{}, 0, ""
		return h, true
	})
	s.holdAnswer(w, r, name, ch, err, "resumed")
}

func (s *Server) holdAnswer(w http.ResponseWriter, r *http.Request, name string, ch store.Channel, err error, what string) {
	switch {
	case errors.Is(err, errBusy):
		w.Header().Set("Retry-After", "1")
		fail(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		s.storeErr(w, r, "channel "+name, err)
	default:
		s.log.Info("rollout "+what, "channel", name, "sequence", ch.Sequence, "paused", ch.Hold.Paused)
		s.replyStatus(w, r, ch)
	}
}

func printableText(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
