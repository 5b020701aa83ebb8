package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/node/fact"
)

// Files in Config.Dir.
const (
	KeysFile   = "keys.json"
	NoncesFile = "nonces.json"
)

// maxKeys bounds the keys kept: only twins whose request verified are
// kept, but "any" lets every twin of the grid in.
const maxKeys = 100_000

// keyCache keeps twins' public keys and the farm's owner on disk.
type keyCache struct {
	path string
	mu   sync.Mutex
	data keysFile
}

type keysFile struct {
	// Twins maps a twin id to its public key (base64).
	Twins map[string]string `json:"twins"`
	// FarmOwners maps a farm id to its owner twin.
	FarmOwners map[string]uint64 `json:"farm_owners"`
}

func openKeys(dir string) (c *keyCache, warning string, err error) {
	c = &keyCache{path: filepath.Join(dir, KeysFile), data: keysFile{Twins: map[string]string{}, FarmOwners: map[string]uint64{}}}
	b, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("auth: %w", err)
	}
	if err := json.Unmarshal(b, &c.data); err != nil {
		// The keys can all be fetched again: start afresh, and say so.
		c.data = keysFile{}
		warning = fmt.Sprintf("%s is damaged (%v): twins' keys will be fetched from the registrar again", c.path, err)
	}
	if c.data.Twins == nil {
		c.data.Twins = map[string]string{}
	}
	if c.data.FarmOwners == nil {
		c.data.FarmOwners = map[string]uint64{}
	}
	return c, warning, nil
}

func (c *keyCache) get(twin uint64) (ed25519.PublicKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, err := base64.StdEncoding.DecodeString(c.data.Twins[strconv.FormatUint(twin, 10)])
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, false
	}
	return k, true
}

func (c *keyCache) put(twin uint64, key ed25519.PublicKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.data.Twins) >= maxKeys {
		clear(c.data.Twins) // crude, and keys can be fetched again
	}
	c.data.Twins[strconv.FormatUint(twin, 10)] = base64.StdEncoding.EncodeToString(key)
	return c.saveLocked()
}

func (c *keyCache) owner(farm uint64) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.data.FarmOwners[strconv.FormatUint(farm, 10)]
	return t, ok
}

func (c *keyCache) setOwner(farm, twin uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.data.FarmOwners[strconv.FormatUint(farm, 10)] = twin
	return c.saveLocked()
}

func (c *keyCache) saveLocked() error {
	b, err := json.Marshal(c.data)
	if err != nil {
		return err
	}
	return fact.WriteFile(c.path, b, 0o600)
}

// errReplay is a nonce seen before.
var errReplay = errors.New("nonce already used")

// nonceStore remembers nonces until their request's timestamp leaves the
// window; those of writes also in a file, rewritten atomically on each.
type nonceStore struct {
	path string
	max  int
	mu   sync.Mutex
	m    map[string]nonce
	// notBefore refuses requests signed before it: set at start when the
	// file could not be read, since the nonces it held are lost.
	notBefore time.Time
}

type nonce struct {
	Expires int64 `json:"expires"` // unix seconds
	durable bool
}

func openNonces(dir string, max int, now time.Time) (s *nonceStore, warning string, err error) {
	s = &nonceStore{path: filepath.Join(dir, NoncesFile), max: max, m: map[string]nonce{}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("auth: %w", err)
	}
	var saved map[string]nonce
	if err := json.Unmarshal(b, &saved); err != nil {
		s.notBefore = now
		return s, fmt.Sprintf("%s is damaged (%v): requests signed before now are refused", s.path, err), nil
	}
	for k, n := range saved {
		if time.Unix(n.Expires, 0).After(now) && len(s.m) < max {
			n.durable = true
			s.m[k] = n
		}
	}
	return s, "", nil
}

// use records key until exp, on disk too when durable; errReplay when it
// is known already.
func (s *nonceStore) use(key string, exp time.Time, durable bool, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.notBefore.IsZero() && exp.Add(-api.ChallengeMaxAge).Unix() <= s.notBefore.Unix() {
		return errReplay // signed before (or in the second of) a start that lost the nonces
	}
	if n, ok := s.m[key]; ok && time.Unix(n.Expires, 0).After(now) {
		return errReplay
	}
	if len(s.m) >= s.max {
		for k, n := range s.m {
			if !time.Unix(n.Expires, 0).After(now) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= s.max {
			return fmt.Errorf("too many requests in the last minute (%d); try again in a minute", s.max)
		}
	}
	s.m[key] = nonce{Expires: exp.Unix(), durable: durable}
	if !durable {
		return nil
	}
	saved := map[string]nonce{}
	for k, n := range s.m {
		if n.durable && time.Unix(n.Expires, 0).After(now) {
			saved[k] = n
		}
	}
	b, err := json.Marshal(saved)
	if err == nil {
		err = fact.WriteFile(s.path, b, 0o600)
	}
	if err != nil {
		delete(s.m, key)
		return fmt.Errorf("keeping the request's nonce on disk: %w", err)
	}
	return nil
}
