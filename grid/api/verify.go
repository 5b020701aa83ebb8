package api

import (
	"crypto/ed25519"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Signed is a strict-mode request's X-Auth and X-Auth-Strict, parsed but not
// verified. A server looks the twin's key up, calls Verify, and then
// refuses a Nonce it has seen within the challenge's validity (that memory
// is the server's: see the node's workload/auth).
type Signed struct {
	Twin      uint64
	Timestamp int64
	// Nonce is the nonce as sent (base64).
	Nonce string

	challenge, sig, strictSig []byte
}

// Errors of ParseSigned and Signed.Verify. A server answers ErrNoAuth,
// ErrNoStrict, ErrExpired and the signature errors with 401, and
// ErrMalformedAuth and ErrMalformedStrict with 400.
var (
	ErrNoAuth       = errors.New("missing X-Auth header: sign the request")
	ErrNoStrict     = errors.New("missing X-Auth-Strict header: the request must be signed over method, path, body and a nonce")
	ErrExpired      = errors.New("expired challenge: the timestamp is more than 60 s away from the server's clock")
	ErrBadSignature = errors.New("signature verification failed")
	ErrBadStrictSig = errors.New("strict signature verification failed (it covers method, path, body hash and nonce)")
	ErrNotCanonical = errors.New("malformed X-Auth header: the challenge must be \"<unix_timestamp>:<twin_id>\" in decimal")
)

// ParseSigned reads the X-Auth and X-Auth-Strict headers of a request.
func ParseSigned(h http.Header) (Signed, error) {
	xa := h.Get(HeaderAuth)
	if xa == "" {
		return Signed{}, ErrNoAuth
	}
	challenge, ts, twin, sig, err := ParseAuthHeader(xa)
	if err != nil {
		return Signed{}, err
	}
	// Only the canonical form: the strict message repeats ts and twin in
	// decimal, so both signatures must speak of the same numbers.
	if string(challenge) != strconv.FormatInt(ts, 10)+":"+strconv.FormatUint(twin, 10) {
		return Signed{}, ErrNotCanonical
	}
	sh := h.Get(HeaderAuthStrict)
	if sh == "" {
		return Signed{}, ErrNoStrict
	}
	nonce, strictSig, err := ParseStrictHeader(sh)
	if err != nil {
		return Signed{}, err
	}
	return Signed{Twin: twin, Timestamp: ts, Nonce: nonce, challenge: challenge, sig: sig, strictSig: strictSig}, nil
}

// Verify checks that the timestamp is within ChallengeMaxAge of now and
// that key made both signatures, the strict one over this method, request
// URI (path and raw query, as received) and body.
func (s Signed) Verify(key ed25519.PublicKey, method, requestURI string, body []byte, now time.Time) error {
	if Expired(s.Timestamp, now) {
		return ErrExpired
	}
	if len(key) != ed25519.PublicKeySize || !ed25519.Verify(key, s.challenge, s.sig) {
		return ErrBadSignature
	}
	if !ed25519.Verify(key, StrictMessage(s.Timestamp, s.Twin, s.Nonce, method, requestURI, body), s.strictSig) {
		return ErrBadStrictSig
	}
	return nil
}

// Expires is when the request's timestamp leaves the validity window: a
// server must remember the nonce until then.
func (s Signed) Expires() time.Time {
	return time.Unix(s.Timestamp, 0).Add(ChallengeMaxAge)
}
