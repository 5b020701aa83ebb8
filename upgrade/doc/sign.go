// Package doc holds the signed documents of gridnode upgrades: the release
// document (a version and every artifact of the release with its sha256 and
// size) and the channel document (which release a channel offers, to whom,
// from when). It is the contract between the release engineer's tools
// (gridnode release, gridnode channel), the registrar that stores channel
// documents, and the node that accepts them: their types, their one
// canonical encoding, signing, verification and the node's acceptance check
// live here and nowhere else.
//
// Both documents travel in one envelope: the canonical JSON of the document
// as base64, its type, and ed25519 signatures over the type and those exact
// bytes. A verifier never re-encodes what it verifies, and the type in the
// signed bytes keeps a signature on a release document from passing as a
// channel document.
package doc

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeyPrefix starts the one-line form of a release public key, as it is
// pasted into an image spec's release_keys.
const KeyPrefix = "ed25519:"

// PublicKey is a release public key.
type PublicKey ed25519.PublicKey

// String is the one-line form: "ed25519:" and the standard base64 of the key.
func (k PublicKey) String() string { return KeyPrefix + base64.StdEncoding.EncodeToString(k) }

// ParsePublicKey reads the one-line form String writes.
func ParsePublicKey(s string) (PublicKey, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), KeyPrefix)
	if !ok {
		return nil, fmt.Errorf("release key %q: want %s and the base64 of 32 bytes (gridnode release keygen prints one)", s, KeyPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("release key %q: want %s and the base64 of 32 bytes (gridnode release keygen prints one)", s, KeyPrefix)
	}
	return PublicKey(b), nil
}

// ParsePublicKeys reads a list of one-line keys.
func ParsePublicKeys(lines []string) ([]PublicKey, error) {
	var out []PublicKey
	for _, l := range lines {
		k, err := ParsePublicKey(l)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// GenerateKey makes a release key.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return priv, err
}

// MarshalPrivateKey encodes a release key as PKCS #8 PEM (what openssl
// reads too).
func MarshalPrivateKey(k ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadPrivateKey reads a release key file written by gridnode release keygen.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("release key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("release key %s: not a PEM private key (make one with gridnode release keygen)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("release key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("release key %s: a %T, want an ed25519 key", path, k)
	}
	return ek, nil
}

// Document types, signed with the payload.
const (
	TypeRelease = "gridnode.release.v1"
	TypeChannel = "gridnode.channel.v1"
)

// Envelope is a signed document as it is stored and sent.
type Envelope struct {
	Type       string      `json:"type"`
	Payload    string      `json:"payload"` // standard base64 of the canonical JSON
	Signatures []Signature `json:"signatures"`
}

// Signature is one key's signature over the envelope's type and payload.
type Signature struct {
	Key string `json:"key"` // the public key, one-line form
	Sig string `json:"sig"` // standard base64
}

// MaxEnvelope bounds what Open reads: documents are a few KiB.
const MaxEnvelope = 1 << 20

// signed is what a signature covers: a fixed prefix, the type, the payload.
func signed(typ string, payload []byte) []byte {
	return append([]byte("gridnode-signed-v1\n"+typ+"\n"), payload...)
}

// seal encodes v canonically and signs it with each key (none: unsigned).
func seal(typ string, v any, keys ...ed25519.PrivateKey) ([]byte, error) {
	payload, err := canonical(v)
	if err != nil {
		return nil, err
	}
	env := Envelope{Type: typ, Payload: base64.StdEncoding.EncodeToString(payload), Signatures: []Signature{}}
	for _, k := range keys {
		env.Signatures = append(env.Signatures, Signature{
			Key: PublicKey(k.Public().(ed25519.PublicKey)).String(),
			Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(k, signed(typ, payload))),
		})
	}
	return canonical(env)
}

// canonical is the one encoding of a document: encoding/json of the struct
// (fields in declaration order, no HTML escaping), one trailing newline.
func canonical(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// decodeStrict decodes JSON with unknown fields and trailing data refused.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the document")
	}
	return nil
}

// Errors of Open, to tell them apart with errors.Is.
var (
	ErrUnsigned   = errors.New("not signed")
	ErrUnknownKey = errors.New("signed by no trusted release key")
	ErrBadSig     = errors.New("bad signature")
)

// open decodes an envelope of type typ and returns its payload, checked
// against keys: a signature by one of them must verify. With no keys the
// payload is returned unchecked (the caller asked for no verification) and
// the returned key is nil.
func open(b []byte, typ string, keys []PublicKey) (payload []byte, by PublicKey, err error) {
	if len(b) > MaxEnvelope {
		return nil, nil, fmt.Errorf("%d bytes, more than a document's %d", len(b), MaxEnvelope)
	}
	var env Envelope
	if err := decodeStrict(b, &env); err != nil {
		return nil, nil, fmt.Errorf("not a signed document: %w", err)
	}
	if env.Type != typ {
		return nil, nil, fmt.Errorf("a %q document, want %q", env.Type, typ)
	}
	payload, err = base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("payload: %w", err)
	}
	if len(keys) == 0 {
		return payload, nil, nil
	}
	if len(env.Signatures) == 0 {
		return nil, nil, ErrUnsigned
	}
	known := false
	for _, s := range env.Signatures {
		k, err := ParsePublicKey(s.Key)
		if err != nil {
			continue
		}
		for _, want := range keys {
			if !bytes.Equal(k, want) {
				continue
			}
			known = true
			sig, err := base64.StdEncoding.DecodeString(s.Sig)
			if err == nil && ed25519.Verify(ed25519.PublicKey(k), signed(typ, payload), sig) {
				return payload, k, nil
			}
		}
	}
	if known {
		return nil, nil, fmt.Errorf("%w by a trusted release key (the document was changed after signing, or the signature is damaged)", ErrBadSig)
	}
	var by2 []string
	for _, s := range env.Signatures {
		by2 = append(by2, s.Key)
	}
	return nil, nil, fmt.Errorf("%w: signed by %s; trusted: %s", ErrUnknownKey, strings.Join(by2, ", "), keyList(keys))
}

func keyList(keys []PublicKey) string {
	var s []string
	for _, k := range keys {
		s = append(s, k.String())
	}
	return strings.Join(s, ", ")
}

// Signed reports whether an envelope carries any signature (without
// checking it): release push refuses an unsigned release.
func Signed(b []byte) bool {
	var env Envelope
	return decodeStrict(b, &env) == nil && len(env.Signatures) > 0
}

// KeysPath is where an image holds its release keys, one per line in the
// one-line form, beside the node configuration: the builder writes it from
// the spec's release_keys, the node's upgrade module reads it.
const KeysPath = "/etc/gridnode/release-keys"

// KeysFile is the content of KeysPath for keys.
func KeysFile(keys []PublicKey) []byte {
	var b strings.Builder
	b.WriteString("# release keys baked in by gridnode build: channel documents and releases must be signed by one\n")
	for _, k := range keys {
		b.WriteString(k.String() + "\n")
	}
	return []byte(b.String())
}

// ParseKeysFile reads KeysPath's content (name for errors): an error names
// the line.
func ParseKeysFile(name string, b []byte) ([]PublicKey, error) {
	var out []PublicKey
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, err := ParsePublicKey(l)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		out = append(out, k)
	}
	return out, nil
}
