// Package auth checks who is asking the node's deployments API, and whether
// they may.
//
// Every request is signed by a twin's key with the registrar's strict
// scheme (grid/api: X-Auth and X-Auth-Strict over method, path, body hash,
// timestamp and nonce). Authenticate verifies it:
//
//   - unsigned, malformed, a bad signature, a timestamp more than 60 s off
//     the node's clock, an unknown twin, or a nonce used before: 401;
//   - a twin's public key comes from the registrar (GET
//     /accounts?twin_id=N) and is kept on the node's disk once a request
//     of that twin verified, so deployments are still checked while the
//     registrar is unreachable (a twin's key never changes). A twin whose
//     key is not kept and cannot be fetched: 503;
//   - nonces are kept until their timestamp leaves the window; those of
//     writes also on the node's disk (written atomically on each write), so
//     a write replayed after a reboot is refused too. At most MaxNonces
//     are kept: past that, requests get 503 until old ones expire.
//
// MayDeploy says who may deploy: the farm's owner twin, the twins of
// gridnode.deployers, or anyone when it says "any"; others get 403.
package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
)

// Registrar is what auth asks the grid registrar; *client.Client is one.
type Registrar interface {
	Account(ctx context.Context, twin uint64) (api.Account, error)
	Farm(ctx context.Context, id uint64) (api.Farm, error)
}

// Config configures an Authenticator.
type Config struct {
	// Dir is a folder on the cache disk for keys.json and nonces.json.
	Dir string
	// Farm is the farm the node belongs to; its owner may deploy.
	Farm uint64
	// Deployers are further twins (decimal ids) allowed to deploy, or
	// "any" (node/config's gridnode.deployers).
	Deployers []string
	// Registrar looks keys and the farm's owner up; nil means only what
	// Dir keeps is known.
	Registrar Registrar
	// Now is the node's clock; nil means time.Now.
	Now func() time.Time
	// MaxNonces bounds the nonces kept; 0 means DefaultMaxNonces.
	MaxNonces int
	// MaxBody bounds a request's body; 0 means DefaultMaxBody.
	MaxBody int64
}

// Defaults of Config.
const (
	DefaultMaxNonces = 65536
	DefaultMaxBody   = 1 << 20
)

// Error is a refusal with the HTTP status to answer.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func refuse(status int, format string, a ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, a...)}
}

// Caller is an authenticated request.
type Caller struct {
	Twin uint64
	// Body is the request's body, read and verified.
	Body []byte
}

// Authenticator checks requests. It is safe for concurrent use.
type Authenticator struct {
	// Warnings say what New found damaged on disk, for the log.
	Warnings []string

	cfg    Config
	any    bool
	allow  []uint64
	keys   *keyCache
	nonces *nonceStore

	mu      sync.Mutex
	missing map[uint64]time.Time // twins the registrar did not know, until when
}

// New opens the key cache and nonce store in cfg.Dir.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxNonces == 0 {
		cfg.MaxNonces = DefaultMaxNonces
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	a := &Authenticator{cfg: cfg, missing: map[uint64]time.Time{}}
	for _, d := range cfg.Deployers {
		if d == "any" {
			a.any = true
			continue
		}
		id, err := strconv.ParseUint(d, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("deployers: %q is neither a twin id nor any", d)
		}
		a.allow = append(a.allow, id)
	}
	var err error
	var w1, w2 string
	if a.keys, w1, err = openKeys(cfg.Dir); err != nil {
		return nil, err
	}
	if a.nonces, w2, err = openNonces(cfg.Dir, cfg.MaxNonces, cfg.Now()); err != nil {
		return nil, err
	}
	for _, w := range []string{w1, w2} {
		if w != "" {
			a.Warnings = append(a.Warnings, w)
		}
	}
	return a, nil
}

// Authenticate reads r's body and checks its signature. write says the
// request changes something: its nonce is kept across reboots. The error
// is an *Error.
func (a *Authenticator) Authenticate(r *http.Request, write bool) (Caller, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, a.cfg.MaxBody+1))
	if err != nil {
		return Caller{}, refuse(http.StatusBadRequest, "reading the request body: %v", err)
	}
	if int64(len(body)) > a.cfg.MaxBody {
		return Caller{}, refuse(http.StatusRequestEntityTooLarge, "request body over %d bytes", a.cfg.MaxBody)
	}
	s, err := api.ParseSigned(r.Header)
	switch {
	case errors.Is(err, api.ErrNoAuth), errors.Is(err, api.ErrNoStrict):
		return Caller{}, refuse(http.StatusUnauthorized, "%v", err)
	case err != nil:
		return Caller{}, refuse(http.StatusUnauthorized, "%v: want X-Auth <challenge_b64>:<signature_b64> and X-Auth-Strict <nonce_b64>:<signature_b64>", err)
	}
	now := a.cfg.Now()
	if age := now.Sub(time.Unix(s.Timestamp, 0)); age > api.ChallengeMaxAge || age < -api.ChallengeMaxAge {
		return Caller{}, refuse(http.StatusUnauthorized, "%v (node time %s; is a clock wrong?)", api.ErrExpired, now.UTC().Format(time.RFC3339))
	}
	key, cached, err := a.key(r.Context(), s.Twin)
	if err != nil {
		return Caller{}, err
	}
	if err := s.Verify(key, r.Method, r.URL.RequestURI(), body, now); err != nil {
		return Caller{}, refuse(http.StatusUnauthorized, "twin %d: %v", s.Twin, err)
	}
	if !cached {
		if err := a.keys.put(s.Twin, key); err != nil {
			return Caller{}, refuse(http.StatusServiceUnavailable, "keeping the key of twin %d: %v", s.Twin, err)
		}
	}
	if err := a.nonces.use(strconv.FormatUint(s.Twin, 10)+":"+s.Nonce, s.Expires(), write, now); err != nil {
		if errors.Is(err, errReplay) {
			return Caller{}, refuse(http.StatusUnauthorized, "replayed request: nonce already used; sign every request afresh")
		}
		return Caller{}, refuse(http.StatusServiceUnavailable, "%v", err)
	}
	return Caller{Twin: s.Twin, Body: body}, nil
}

// key returns a twin's public key, from the cache or the registrar, and
// whether it came from the cache.
func (a *Authenticator) key(ctx context.Context, twin uint64) (ed25519.PublicKey, bool, error) {
	if k, ok := a.keys.get(twin); ok {
		return k, true, nil
	}
	if a.cfg.Registrar == nil {
		return nil, false, refuse(http.StatusUnauthorized, "unknown twin %d (no registrar configured, and its key is not kept on this node)", twin)
	}
	a.mu.Lock()
	until, miss := a.missing[twin]
	a.mu.Unlock()
	if miss && a.cfg.Now().Before(until) {
		return nil, false, refuse(http.StatusUnauthorized, "unknown twin %d", twin)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	acc, err := a.cfg.Registrar.Account(ctx, twin)
	if client.IsNotFound(err) {
		a.mu.Lock()
		if len(a.missing) > 1024 {
			clear(a.missing)
		}
		a.missing[twin] = a.cfg.Now().Add(time.Minute)
		a.mu.Unlock()
		return nil, false, refuse(http.StatusUnauthorized, "unknown twin %d: the registrar has no such account", twin)
	}
	if err != nil {
		return nil, false, refuse(http.StatusServiceUnavailable, "cannot check twin %d: its key is not kept on this node and the registrar did not answer (%v); try again when the node reaches its registrar", twin, err)
	}
	k, err := base64.StdEncoding.DecodeString(acc.PublicKey)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, false, refuse(http.StatusUnauthorized, "twin %d: the registrar's key for it is not an ed25519 key", twin)
	}
	return ed25519.PublicKey(k), false, nil
}

// FarmOwner returns the twin that owns the node's farm: from the cache,
// else from the registrar (then kept).
func (a *Authenticator) FarmOwner(ctx context.Context) (uint64, error) {
	if t, ok := a.keys.owner(a.cfg.Farm); ok {
		return t, nil
	}
	if a.cfg.Registrar == nil || a.cfg.Farm == 0 {
		return 0, fmt.Errorf("the node's farm (%d) and its owner are not known", a.cfg.Farm)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	f, err := a.cfg.Registrar.Farm(ctx, a.cfg.Farm)
	if err != nil {
		return 0, fmt.Errorf("looking up the owner of farm %d: %w", a.cfg.Farm, err)
	}
	if err := a.keys.setOwner(a.cfg.Farm, f.TwinID); err != nil {
		return 0, err
	}
	return f.TwinID, nil
}

// IsFarmer says whether twin owns the node's farm (false when that cannot
// be known now).
func (a *Authenticator) IsFarmer(ctx context.Context, twin uint64) bool {
	o, err := a.FarmOwner(ctx)
	return err == nil && o == twin
}

// MayDeploy returns nil when twin may deploy on this node, else an *Error:
// 403, or 503 when the farm's owner cannot be known yet.
func (a *Authenticator) MayDeploy(ctx context.Context, twin uint64) error {
	if a.any || slices.Contains(a.allow, twin) {
		return nil
	}
	o, err := a.FarmOwner(ctx)
	if err != nil {
		return refuse(http.StatusServiceUnavailable, "twin %d is not in gridnode.deployers, and %v", twin, err)
	}
	if o == twin {
		return nil
	}
	return refuse(http.StatusForbidden, "twin %d may not deploy on this node: only the farm's owner (twin %d) and the twins of gridnode.deployers may", twin, o)
}
