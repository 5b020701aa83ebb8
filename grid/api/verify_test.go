package api

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestSignedVerify: a strict request verifies with the signer's key, and
// any change of method, path, query, body, key or clock is refused.
func TestSignedVerify(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"name":"web"}`)
	xa, xs := StrictAuthHeaders(key, 7, now, []byte("0123456789abcdef"), "POST", "/api/v1/deployments", body)
	h := http.Header{}
	h.Set(HeaderAuth, xa)
	h.Set(HeaderAuthStrict, xs)
	s, err := ParseSigned(h)
	if err != nil {
		t.Fatal(err)
	}
	if s.Twin != 7 || s.Timestamp != now.Unix() || s.Nonce != base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")) {
		t.Fatalf("parsed %+v", s)
	}
	if err := s.Verify(pub, "POST", "/api/v1/deployments", body, now.Add(30*time.Second)); err != nil {
		t.Fatalf("Verify of a good request: %v", err)
	}
	if !s.Expires().Equal(now.Add(ChallengeMaxAge)) {
		t.Fatalf("Expires = %v", s.Expires())
	}
	for _, c := range []struct {
		name              string
		key               ed25519.PublicKey
		method, uri, body string
		at                time.Time
		want              error
	}{
		{"method", pub, "DELETE", "/api/v1/deployments", string(body), now, ErrBadStrictSig},
		{"path", pub, "POST", "/api/v1/deployments/x", string(body), now, ErrBadStrictSig},
		{"query", pub, "POST", "/api/v1/deployments?purge=1", string(body), now, ErrBadStrictSig},
		{"body", pub, "POST", "/api/v1/deployments", `{"name":"evil"}`, now, ErrBadStrictSig},
		{"key", otherPub, "POST", "/api/v1/deployments", string(body), now, ErrBadSignature},
		{"late", pub, "POST", "/api/v1/deployments", string(body), now.Add(61 * time.Second), ErrExpired},
		{"early", pub, "POST", "/api/v1/deployments", string(body), now.Add(-61 * time.Second), ErrExpired},
	} {
		if err := s.Verify(c.key, c.method, c.uri, []byte(c.body), c.at); !errors.Is(err, c.want) {
			t.Errorf("%s changed: Verify = %v; want %v", c.name, err, c.want)
		}
	}

	for name, hdr := range map[string]http.Header{
		"unsigned":      {},
		"no strict":     {HeaderAuth: {xa}},
		"bad strict":    {HeaderAuth: {xa}, HeaderAuthStrict: {"x:y"}},
		"non-canonical": {HeaderAuth: {base64.StdEncoding.EncodeToString([]byte("0017:7")) + ":" + base64.StdEncoding.EncodeToString(make([]byte, 64))}, HeaderAuthStrict: {xs}},
	} {
		if _, err := ParseSigned(hdr); err == nil {
			t.Errorf("ParseSigned(%s) accepted it", name)
		}
	}
}
