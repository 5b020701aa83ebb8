package doc

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func key(t testing.TB) (ed25519.PrivateKey, PublicKey) {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k, PublicKey(k.Public().(ed25519.PublicKey))
}

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func channel() Channel {
	return Channel{
		Channel: "stable", Sequence: 7, Expires: t0.Add(30 * 24 * time.Hour), Version: "0.2.0",
		Release: "127.0.0.1:5000/gridnode/release@sha256:" + strings.Repeat("ab", 32),
		Waves: []Wave{
			{At: t0, SharePPM: 10_000}, {At: t0.Add(24 * time.Hour), SharePPM: 100_000},
			{At: t0.Add(48 * time.Hour), SharePPM: 500_000}, {At: t0.Add(72 * time.Hour), SharePPM: PPM},
		},
		CanaryFarms: []uint64{1, 7},
	}
}

func TestChannelAccept(t *testing.T) {
	priv, pub := key(t)
	other, otherPub := key(t)
	signed, err := SignChannel(channel(), priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Accept(signed, []PublicKey{otherPub, pub}, "stable", 6, t0)
	if err != nil {
		t.Fatalf("a good document: %v", err)
	}
	if c.Sequence != 7 || c.Version != "0.2.0" || len(c.Waves) != 4 || c.CanaryFarms[1] != 7 {
		t.Fatalf("decoded %+v", c)
	}

	byOther, _ := SignChannel(channel(), other)
	tampered := tamper(t, signed, func(c *Channel) { c.Version = "6.6.6" })
	cases := []struct {
		name string
		doc  []byte
		keys []PublicKey
		ch   string
		last uint64
		now  time.Time
		want error
	}{
		{"bad signature", tampered, []PublicKey{pub}, "stable", 0, t0, ErrBadSig},
		{"unknown key", byOther, []PublicKey{pub}, "stable", 0, t0, ErrUnknownKey},
		{"old sequence", signed, []PublicKey{pub}, "stable", 7, t0, ErrOldSequence},
		{"older sequence", signed, []PublicKey{pub}, "stable", 9, t0, ErrOldSequence},
		{"expired", signed, []PublicKey{pub}, "stable", 0, t0.Add(30 * 24 * time.Hour), ErrExpired},
		{"other channel", signed, []PublicKey{pub}, "beta", 0, t0, ErrOtherChannel},
		{"unsigned", unsigned(t, channel()), []PublicKey{pub}, "stable", 0, t0, ErrUnsigned},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Accept(c.doc, c.keys, c.ch, c.last, c.now)
			if !errors.Is(err, c.want) {
				t.Fatalf("Accept: %v, want %v", err, c.want)
			}
		})
	}
	if _, err := Accept(signed, nil, "stable", 0, t0); err == nil || !strings.Contains(err.Error(), "no release keys") {
		t.Fatalf("an image without keys accepted a document: %v", err)
	}
}

// tamper decodes the payload, changes it and puts it back with the old
// signatures.
func tamper(t *testing.T, b []byte, f func(*Channel)) []byte {
	t.Helper()
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	p, _ := base64.StdEncoding.DecodeString(env.Payload)
	var c Channel
	if err := json.Unmarshal(p, &c); err != nil {
		t.Fatal(err)
	}
	f(&c)
	p, _ = canonical(c)
	env.Payload = base64.StdEncoding.EncodeToString(p)
	out, _ := canonical(env)
	return out
}

func unsigned(t *testing.T, c Channel) []byte {
	t.Helper()
	b, err := seal(TypeChannel, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChannelCheck(t *testing.T) {
	priv, _ := key(t)
	for name, f := range map[string]func(*Channel){
		"no digest":   func(c *Channel) { c.Release = "r/x:1" },
		"shrinking":   func(c *Channel) { c.Waves[2].SharePPM = 1 },
		"same time":   func(c *Channel) { c.Waves[1].At = c.Waves[0].At },
		"over 100%":   func(c *Channel) { c.Waves[3].SharePPM = PPM + 1 },
		"sequence 0":  func(c *Channel) { c.Sequence = 0 },
		"name":        func(c *Channel) { c.Channel = "../x" },
		"no expiry":   func(c *Channel) { c.Expires = time.Time{} },
		"no waves":    func(c *Channel) { c.Waves = nil },
		"bad version": func(c *Channel) { c.Version = "a b" },
	} {
		c := channel()
		f(&c)
		if _, err := SignChannel(c, priv); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

// A release document for a release signature cannot pass as a channel
// document, nor the reverse: the type is signed.
func TestTypeIsSigned(t *testing.T) {
	priv, pub := key(t)
	signed, _ := SignChannel(channel(), priv)
	var env Envelope
	json.Unmarshal(signed, &env)
	env.Type = TypeRelease
	b, _ := canonical(env)
	if _, err := OpenRelease(b, []PublicKey{pub}); !errors.Is(err, ErrBadSig) {
		t.Fatalf("a channel signature passed as a release's: %v", err)
	}
}

func release() Release {
	return Release{Version: "0.2.0", Files: []File{
		{Name: "vmlinuz", SHA256: strings.Repeat("1", 64), Size: 10},
		{Name: "gridnode-0.2.0.efi", SHA256: strings.Repeat("2", 64), Size: 20},
		{Name: "pxe/boot.ipxe", SHA256: strings.Repeat("3", 64), Size: 30},
	}}
}

func TestReleaseRoundTrip(t *testing.T) {
	priv, pub := key(t)
	a, err := SignRelease(release(), priv)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SignRelease(release(), priv)
	if !bytes.Equal(a, b) {
		t.Fatal("the same release signed twice gave different bytes (ed25519 is deterministic, the encoding must be too)")
	}
	r, err := OpenRelease(a, []PublicKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	if r.Files[0].Name != "gridnode-0.2.0.efi" || r.Files[2].Name != "vmlinuz" {
		t.Fatalf("files not sorted: %+v", r.Files)
	}
	if f, ok := r.File("pxe/boot.ipxe"); !ok || f.Size != 30 {
		t.Fatalf("File: %+v %v", f, ok)
	}
	if !Signed(a) {
		t.Fatal("Signed says a signed release is not")
	}
	u, _ := SignRelease(release())
	if Signed(u) {
		t.Fatal("Signed says an unsigned release is")
	}
	if _, err := OpenRelease(u, []PublicKey{pub}); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned release verified: %v", err)
	}
	if _, err := OpenRelease(u, nil); err != nil {
		t.Fatalf("unsigned release, unverified read: %v", err)
	}
	bad := release()
	bad.Files[0].Name = "../../etc/passwd"
	if _, err := SignRelease(bad, priv); err == nil {
		t.Fatal("a file name outside the release was signed")
	}
}

func TestKeys(t *testing.T) {
	priv, pub := key(t)
	got, err := ParsePublicKey(pub.String())
	if err != nil || !bytes.Equal(got, pub) {
		t.Fatalf("ParsePublicKey(%s) = %v, %v", pub, got, err)
	}
	for _, s := range []string{"", "ed25519:", "ed25519:AAAA", "rsa:" + pub.String()[8:], pub.String()[8:]} {
		if _, err := ParsePublicKey(s); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", s)
		}
	}
	pemBytes, err := MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	p := t.TempDir() + "/k"
	if err := writeFile(p, pemBytes); err != nil {
		t.Fatal(err)
	}
	back, err := LoadPrivateKey(p)
	if err != nil || !bytes.Equal(back, priv) {
		t.Fatalf("LoadPrivateKey: %v", err)
	}
}

// FuzzOpen: the decoders never panic, and whatever they accept was signed
// by the key (the fuzzer cannot forge a signature).
func FuzzOpen(f *testing.F) {
	priv, pub := key(f)
	c, _ := SignChannel(channel(), priv)
	r, _ := SignRelease(release(), priv)
	f.Add(c)
	f.Add(r)
	f.Add([]byte(`{"type":"gridnode.channel.v1","payload":"e30K","signatures":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ch, err := OpenChannel(b, []PublicKey{pub}); err == nil {
			if err := ch.Check(); err != nil {
				t.Fatalf("accepted a bad channel: %v", err)
			}
		}
		if rel, err := OpenRelease(b, []PublicKey{pub}); err == nil {
			if err := rel.Check(); err != nil {
				t.Fatalf("accepted a bad release: %v", err)
			}
		}
		OpenChannel(b, nil)
		OpenRelease(b, nil)
	})
}

func writeFile(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }

func TestKeysFile(t *testing.T) {
	_, a := key(t)
	_, b := key(t)
	got, err := ParseKeysFile("k", KeysFile([]PublicKey{a, b}))
	if err != nil || len(got) != 2 || !bytes.Equal(got[1], b) {
		t.Fatalf("ParseKeysFile(KeysFile) = %v, %v", got, err)
	}
	_, err = ParseKeysFile("/etc/gridnode/release-keys", []byte("# c\n"+a.String()+"\ned25519:nope\n"))
	if err == nil || !strings.Contains(err.Error(), "/etc/gridnode/release-keys:3:") {
		t.Fatalf("a bad line: %v, want the file and line 3", err)
	}
}

func TestParseShares(t *testing.T) {
	got, err := ParseShares("0.1%, 1%,10%,50%,100%")
	if err != nil || fmt.Sprint(got) != "[1000 10000 100000 500000 1000000]" {
		t.Fatalf("ParseShares = %v, %v", got, err)
	}
	for _, bad := range []string{"10", "0%", "101%", "x%", ""} {
		if _, err := ParseShares(bad); err == nil {
			t.Errorf("ParseShares(%q) accepted", bad)
		}
	}
	w := Schedule(t0, got[:2], 24*time.Hour)
	if len(w) != 2 || !w[1].At.Equal(t0.Add(24*time.Hour)) || w[1].SharePPM != 10000 {
		t.Fatalf("Schedule = %+v", w)
	}
}
