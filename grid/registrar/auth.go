package registrar

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"sync"

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
//
// The twin's rate limit is charged only once its signature is verified:
// anyone can send a header naming a twin, and a bucket charged before the
// check would let forged headers use up the twin's requests (its node
// then answered 429 and shown offline). What comes before the check is
// bounded by the client address's limit (ServeHTTP).
func (s *Server) authBodyHint(w http.ResponseWriter, r *http.Request, hint *owner) ([]byte, uint64, bool) {
	body, ok := readBody(w, r)
	if !ok {
		return nil, 0, false
	}
	var twin uint64
	if s.cfg.StrictAuth {
		twin, ok = s.verifyStrict(w, r, body, hint)
	} else {
		twin, ok = s.verifyPlain(w, r, hint)
	}
	if !ok {
		return nil, 0, false
	}
	return body, twin, true
}

// verifyPlain checks a plain X-Auth: the reference contract, replayable
// within its 60 s by whoever saw it, and covering neither the method, the
// path nor the body.
func (s *Server) verifyPlain(w http.ResponseWriter, r *http.Request, hint *owner) (uint64, bool) {
	h := r.Header.Get(api.HeaderAuth)
	if h == "" {
		fail(w, http.StatusUnauthorized, "missing X-Auth header")
		return 0, false
	}
	challenge, ts, twin, sig, err := api.ParseAuthHeader(h)
	if err != nil {
		fail(w, http.StatusBadRequest, "malformed X-Auth header: want <challenge_b64>:<signature_b64>, challenge \"<unix_timestamp>:<twin_id>\"")
		return 0, false
	}
	if api.Expired(ts, s.now()) {
		fail(w, http.StatusUnauthorized, "Expired challenge")
		return 0, false
	}
	key, ok := s.keyOf(w, r, twin, hint)
	if !ok {
		return 0, false
	}
	// Only a challenge in its canonical form is remembered, so that the
	// bytes verified are the bytes seen again.
	canonical := string(challenge) == strconv.FormatInt(ts, 10)+":"+strconv.FormatUint(twin, 10)
	if v, ok := s.verified.get(twin); !ok || !canonical || v.ts != ts || v.sig != [ed25519.SignatureSize]byte(sig) {
		if !ed25519.Verify(key[:], challenge, sig) {
			fail(w, http.StatusUnauthorized, "signature verification failed")
			return 0, false
		}
		if canonical {
			s.verified.put(twin, verifiedAuth{ts: ts, sig: [ed25519.SignatureSize]byte(sig)})
		}
	}
	return twin, s.twinLim.allow("t"+strconv.FormatUint(twin, 10), w)
}

// verifyStrict checks X-Auth and X-Auth-Strict with the shared verifier
// (api.Signed), then records the nonce in the store, where every replica
// on the same database and this one after a restart find it: a replay is
// refused wherever it is sent. The twin's rate is charged after, so only a
// twin's own requests cost a nonce row.
func (s *Server) verifyStrict(w http.ResponseWriter, r *http.Request, body []byte, hint *owner) (uint64, bool) {
	sg, err := api.ParseSigned(r.Header)
	switch {
	case errors.Is(err, api.ErrNoAuth):
		fail(w, http.StatusUnauthorized, "missing X-Auth header")
		return 0, false
	case errors.Is(err, api.ErrNoStrict):
		fail(w, http.StatusUnauthorized, "missing X-Auth-Strict header (this registrar runs in strict mode: sign the method, path, body and a nonce)")
		return 0, false
	case errors.Is(err, api.ErrMalformedStrict):
		fail(w, http.StatusBadRequest, "malformed X-Auth-Strict header: want <nonce_b64>:<signature_b64>, the nonce 8 to 64 bytes")
		return 0, false
	case err != nil:
		fail(w, http.StatusBadRequest, err.Error()+": want <challenge_b64>:<signature_b64>, challenge \"<unix_timestamp>:<twin_id>\"")
		return 0, false
	}
	now := s.now()
	if api.Expired(sg.Timestamp, now) {
		fail(w, http.StatusUnauthorized, "Expired challenge")
		return 0, false
	}
	key, ok := s.keyOf(w, r, sg.Twin, hint)
	if !ok {
		return 0, false
	}
	if err := sg.Verify(key[:], r.Method, r.URL.RequestURI(), body, now); err != nil {
		fail(w, http.StatusUnauthorized, err.Error())
		return 0, false
	}
	if !s.twinLim.allow("t"+strconv.FormatUint(sg.Twin, 10), w) {
		return 0, false
	}
	// Kept a window longer than the request is valid, for the clocks of
	// replicas that differ.
	fresh, err := s.st.UseNonce(r.Context(), sg.Twin, sg.Nonce, sg.Expires().Add(api.ChallengeMaxAge))
	if err != nil {
		s.storeErr(w, r, "nonce", err)
		return 0, false
	}
	if !fresh {
		fail(w, http.StatusUnauthorized, "replayed request: nonce already used; sign every request with a fresh nonce")
		return 0, false
	}
	return sg.Twin, true
}

// keyOf returns twin's key: hint's when it is that twin's, else from the
// cache or the store. An unknown twin is answered 401.
func (s *Server) keyOf(w http.ResponseWriter, r *http.Request, twin uint64, hint *owner) ([ed25519.PublicKeySize]byte, bool) {
	if hint != nil && hint.twin == twin {
		return hint.key, true
	}
	key, err := s.twinKey(r.Context(), twin)
	if errors.Is(err, store.ErrNotFound) {
		fail(w, http.StatusUnauthorized, "unknown twin "+strconv.FormatUint(twin, 10))
		return key, false
	}
	if err != nil {
		s.internal(w, r, err)
		return key, false
	}
	return key, true
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
