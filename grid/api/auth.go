package api

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// HeaderAuth is the authentication header of the registrar API.
const HeaderAuth = "X-Auth"

// PublicKey encodes a key as it travels: standard base64 of its 32 bytes.
func PublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// AccountMessage is what an account creation signs: "<timestamp>:<public_key_b64>".
func AccountMessage(ts int64, pubB64 string) []byte {
	return []byte(fmt.Sprintf("%d:%s", ts, pubB64))
}

// NewAccount builds a self-signed account creation request for key at time now.
func NewAccount(key ed25519.PrivateKey, now time.Time) CreateAccount {
	pub := PublicKey(key.Public().(ed25519.PublicKey))
	ts := now.Unix()
	sig := ed25519.Sign(key, AccountMessage(ts, pub))
	return CreateAccount{Timestamp: ts, PublicKey: pub, Signature: base64.StdEncoding.EncodeToString(sig)}
}

// Challenge is what an authenticated request signs: "<unix_timestamp>:<twin_id>".
func Challenge(ts int64, twin uint64) []byte {
	return []byte(fmt.Sprintf("%d:%d", ts, twin))
}

// Expired says whether a challenge signed at unix time ts is outside the
// ChallengeMaxAge a server accepts either side of its clock now.
func Expired(ts int64, now time.Time) bool {
	age := now.Sub(time.Unix(ts, 0))
	return age > ChallengeMaxAge || age < -ChallengeMaxAge
}

// AuthHeader returns the X-Auth value "<challenge_b64>:<signature_b64>".
func AuthHeader(key ed25519.PrivateKey, twin uint64, now time.Time) string {
	c := Challenge(now.Unix(), twin)
	sig := ed25519.Sign(key, c)
	return base64.StdEncoding.EncodeToString(c) + ":" + base64.StdEncoding.EncodeToString(sig)
}

// ErrMalformedAuth is returned by ParseAuthHeader for a header that is not of
// the form; a server answers it with 400.
var ErrMalformedAuth = errors.New("malformed X-Auth header")

// ParseAuthHeader splits an X-Auth value into its challenge, timestamp, twin
// and signature. It checks form only, not the signature or the age.
func ParseAuthHeader(h string) (challenge []byte, ts int64, twin uint64, sig []byte, err error) {
	c64, s64, ok := strings.Cut(h, ":")
	if !ok || c64 == "" || s64 == "" {
		return nil, 0, 0, nil, ErrMalformedAuth
	}
	challenge, err = base64.StdEncoding.DecodeString(c64)
	if err != nil {
		return nil, 0, 0, nil, ErrMalformedAuth
	}
	sig, err = base64.StdEncoding.DecodeString(s64)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, 0, 0, nil, ErrMalformedAuth
	}
	tsS, twinS, ok := strings.Cut(string(challenge), ":")
	if !ok {
		return nil, 0, 0, nil, ErrMalformedAuth
	}
	ts, err = strconv.ParseInt(tsS, 10, 64)
	if err != nil {
		return nil, 0, 0, nil, ErrMalformedAuth
	}
	twin, err = strconv.ParseUint(twinS, 10, 64)
	if err != nil {
		return nil, 0, 0, nil, ErrMalformedAuth
	}
	return challenge, ts, twin, sig, nil
}
