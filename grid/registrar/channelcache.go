package registrar

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// channelCache serves channel polls from memory. A grid of a million nodes
// polling a channel every hour is ~300 polls a second, and a fleet coming
// back from a regional power cut polls at once: the answer is made once
// per change (its body and its ETag), not per request.
//
// Bounded staleness: a snapshot is used for at most ttl after it was read
// from the store. A write on this replica (a new document, a pause, a
// resume, a halt) replaces the snapshot at once; a write on another
// replica sharing the database is seen at the first poll after ttl (the
// store's channel row is read again, one primary-key lookup per channel
// and replica per ttl, whatever the poll rate). Polls that find the
// snapshot too old wait for that one read, so no answer is ever older than
// ttl plus the time the read took.
type channelCache struct {
	ttl   time.Duration
	st    store.Store
	mu    sync.Mutex
	items map[string]*channelItem
}

// maxCachedChannels bounds the cache: names are checked before they get
// here, but a client asking for many names that do not exist must not
// grow it; past the bound, unknown names are read from the store.
const maxCachedChannels = 1024

type channelItem struct {
	load sync.Mutex // held by the one request reading the store
	cur  atomic.Pointer[channelSnap]
}

// channelSnap is a channel as polls see it.
type channelSnap struct {
	read  time.Time // when it was read, on the local monotonic clock
	found bool
	ch    store.Channel
	body  []byte // the GET answer: doc.ChannelState
	etag  string // strong ETag of body
}

func newChannelCache(st store.Store, ttl time.Duration) *channelCache {
	return &channelCache{ttl: ttl, st: st, items: map[string]*channelItem{}}
}

func (c *channelCache) item(name string, create bool) *channelItem {
	c.mu.Lock()
	defer c.mu.Unlock()
	it := c.items[name]
	if it == nil && create && len(c.items) < maxCachedChannels {
		it = &channelItem{}
		c.items[name] = it
	}
	return it
}

func (c *channelCache) fresh(s *channelSnap) bool { return s != nil && time.Since(s.read) < c.ttl }

// get returns channel name as polls see it, reading the store when the
// snapshot is older than ttl.
func (c *channelCache) get(ctx context.Context, name string) (*channelSnap, error) {
	it := c.item(name, true)
	if it == nil {
		return c.read(ctx, name)
	}
	if s := it.cur.Load(); c.fresh(s) {
		return s, nil
	}
	it.load.Lock()
	defer it.load.Unlock()
	if s := it.cur.Load(); c.fresh(s) {
		return s, nil // read by the request we waited for
	}
	s, err := c.read(ctx, name)
	if err != nil {
		return nil, err
	}
	it.cur.Store(s)
	return s, nil
}

func (c *channelCache) read(ctx context.Context, name string) (*channelSnap, error) {
	ch, err := c.st.Channel(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return &channelSnap{read: time.Now()}, nil
	}
	if err != nil {
		return nil, err
	}
	return newChannelSnap(ch), nil
}

// put replaces the snapshot of ch.Name with what this replica just wrote.
func (c *channelCache) put(ch store.Channel) {
	if it := c.item(ch.Name, true); it != nil {
		it.cur.Store(newChannelSnap(ch))
	}
}

// newChannelSnap makes the poll answer of ch: the document exactly as
// stored, and the hold.
func newChannelSnap(ch store.Channel) *channelSnap {
	hold, _ := json.Marshal(wireHold(ch.Hold))
	var b strings.Builder
	b.WriteString(`{"document":`)
	b.Write(ch.Document)
	b.WriteString(`,"hold":`)
	b.Write(hold)
	b.WriteString("}\n")
	body := []byte(b.String())
	sum := sha256.Sum256(body)
	return &channelSnap{read: time.Now(), found: true, ch: ch, body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
}

// wireHold is the hold as nodes get it: what the gate applies.
func wireHold(h store.Hold) doc.Hold {
	return doc.Hold{Paused: h.Paused, ShareCapPPM: h.ShareCap}
}

// etagMatch reports whether an If-None-Match header names etag (or is "*").
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
