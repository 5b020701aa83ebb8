package registrar

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

// authBody reads the body and authenticates the request's X-Auth (and, in
// strict mode, X-Auth-Strict), answering the error itself: 400 malformed,
// 401 missing, expired, unknown twin, bad signature or replay; 429 over the
// twin's rate. It returns the body and the signing twin.
func (s *Server) authBody(w http.ResponseWriter, r *http.Request) ([]byte, uint64, bool) {
	return s.authBodyHint(w, r, nil)
}

// verifiedAuth is the last X-Auth verified for a twin: a node signs its
// challenge once a second and sends the same header with each request of
// that second, so a header seen verified need not be verified again (the
// twin's key never changes, and the age is checked every time).
type verifiedAuth struct {
	ts  int64
	sig [ed25519.SignatureSize]byte
}

// authBodyHint is authBody with, when hint is not nil, the key of one twin
// already known (a node's owner).
func (s *Server) authBodyHint(w http.ResponseWriter, r *http.Request, hint *owner) ([]byte, uint64, bool) {
	body, ok := readBody(w, r)
	if !ok {
		return nil, 0, false
	}
	h := r.Header.Get(api.HeaderAuth)
	if h == "" {
		fail(w, http.StatusUnauthorized, "missing X-Auth header")
		return nil, 0, false
	}
	challenge, ts, twin, sig, err := api.ParseAuthHeader(h)
	if err != nil {
		fail(w, http.StatusBadRequest, "malformed X-Auth header: want <challenge_b64>:<signature_b64>, challenge \"<unix_timestamp>:<twin_id>\"")
		return nil, 0, false
	}
	var strictNonce string
	var strictSig []byte
	if s.cfg.StrictAuth {
		sh := r.Header.Get(api.HeaderAuthStrict)
		if sh == "" {
			fail(w, http.StatusUnauthorized, "missing X-Auth-Strict header (this registrar runs in strict mode)")
			return nil, 0, false
		}
		if strictNonce, strictSig, err = api.ParseStrictHeader(sh); err != nil {
			fail(w, http.StatusBadRequest, "malformed X-Auth-Strict header: want <nonce_b64>:<signature_b64>")
			return nil, 0, false
		}
	}
	now := s.now()
	age := now.Sub(time.Unix(ts, 0))
	if age > api.ChallengeMaxAge || age < -api.ChallengeMaxAge {
		fail(w, http.StatusUnauthorized, "Expired challenge")
		return nil, 0, false
	}
	if !s.twinLim.allow("t"+strconv.FormatUint(twin, 10), w) {
		return nil, 0, false
	}
	var key [ed25519.PublicKeySize]byte
	if hint != nil && hint.twin == twin {
		key = hint.key
	} else {
		var err error
		key, err = s.twinKey(r.Context(), twin)
		if errors.Is(err, store.ErrNotFound) {
			fail(w, http.StatusUnauthorized, "unknown twin "+strconv.FormatUint(twin, 10))
			return nil, 0, false
		}
		if err != nil {
			s.internal(w, r, err)
			return nil, 0, false
		}
	}
	// Only a challenge in its canonical form is remembered, so that the
	// bytes verified are the bytes seen again.
	canonical := string(challenge) == strconv.FormatInt(ts, 10)+":"+strconv.FormatUint(twin, 10)
	if v, ok := s.verified.get(twin); !ok || !canonical || v.ts != ts || v.sig != [ed25519.SignatureSize]byte(sig) {
		if !ed25519.Verify(key[:], challenge, sig) {
			fail(w, http.StatusUnauthorized, "signature verification failed")
			return nil, 0, false
		}
		if canonical {
			s.verified.put(twin, verifiedAuth{ts: ts, sig: [ed25519.SignatureSize]byte(sig)})
		}
	}
	if s.cfg.StrictAuth {
		msg := api.StrictMessage(ts, twin, strictNonce, r.Method, r.URL.RequestURI(), body)
		if !ed25519.Verify(key[:], msg, strictSig) {
			fail(w, http.StatusUnauthorized, "strict signature verification failed (it covers method, path, body hash and nonce)")
			return nil, 0, false
		}
		if !s.nonces.add(strconv.FormatUint(twin, 10)+":"+strictNonce, now.Add(2*api.ChallengeMaxAge)) {
			fail(w, http.StatusUnauthorized, "replayed request: nonce already used")
			return nil, 0, false
		}
	}
	return body, twin, true
}

// twinKey returns a twin's public key (cached: an account's key never changes).
func (s *Server) twinKey(ctx context.Context, twin uint64) ([ed25519.PublicKeySize]byte, error) {
	if k, ok := s.keys.get(twin); ok {
		return k, nil
	}
	a, err := s.st.Account(ctx, twin)
	if err != nil {
		return [ed25519.PublicKeySize]byte{}, err
	}
	k, err := base64.StdEncoding.DecodeString(a.PublicKey)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return [ed25519.PublicKeySize]byte{}, errors.New("stored public key of twin " + strconv.FormatUint(twin, 10) + " is not an ed25519 key")
	}
	key := [ed25519.PublicKeySize]byte(k)
	s.keys.put(twin, key)
	return key, nil
}

// cache is a bounded map of immutable facts (twin → key, node → owner),
// sharded to keep lock contention low; a full shard is emptied, which is
// crude but keeps memory flat however many nodes there are.
type cache[V any] struct {
	shards [64]struct {
		sync.RWMutex
		m map[uint64]V
	}
	perShard int
}

func newCache[V any](size int) *cache[V] {
	c := &cache[V]{perShard: max(1, size/64)}
	for i := range c.shards {
		c.shards[i].m = map[uint64]V{}
	}
	return c
}

func (c *cache[V]) get(k uint64) (V, bool) {
	sh := &c.shards[k%64]
	sh.RLock()
	v, ok := sh.m[k]
	sh.RUnlock()
	return v, ok
}

func (c *cache[V]) put(k uint64, v V) {
	sh := &c.shards[k%64]
	sh.Lock()
	if len(sh.m) >= c.perShard {
		sh.m = map[uint64]V{}
	}
	sh.m[k] = v
	sh.Unlock()
}

// nonceCache remembers strict-mode nonces until they expire.
type nonceCache struct {
	mu    sync.Mutex
	m     map[string]time.Time
	sweep time.Time
}

func newNonceCache() *nonceCache { return &nonceCache{m: map[string]time.Time{}} }

// add records key until exp; false if it is already there (a replay).
func (c *nonceCache) add(key string, exp time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Sub(c.sweep) > 10*time.Second {
		for k, e := range c.m {
			if now.After(e) {
				delete(c.m, k)
			}
		}
		c.sweep = now
	}
	if e, ok := c.m[key]; ok && now.Before(e) {
		return false
	}
	c.m[key] = exp
	return true
}
