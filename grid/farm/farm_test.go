package farm

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeyMnemonicRoundTrip(t *testing.T) {
	key, words, err := NewKey(bytes.NewReader(bytes.Repeat([]byte{0x42}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(words)); n != 24 {
		t.Fatalf("%d words, want 24: %q", n, words)
	}
	again, err := KeyFromMnemonic("  " + strings.ToUpper(words) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equal(again) {
		t.Fatal("the mnemonic gives another key")
	}
	bad := strings.Fields(words)
	bad[0], bad[1] = bad[1], bad[0]
	if _, err := KeyFromMnemonic(strings.Join(bad, " ")); err == nil {
		t.Fatal("swapped words accepted")
	}
	// Two keys from fresh randomness differ.
	k2, _, err := NewKey(nil)
	if err != nil || k2.Equal(key) {
		t.Fatalf("fresh key: %v", err)
	}
}

func TestSaveLoadKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "farmer.key")
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	if err := SaveKey(p, key, false); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st, err)
	}
	if err := SaveKey(p, key, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("overwrite without force: %v", err)
	}
	got, err := LoadKey(p)
	if err != nil || !got.Equal(key) {
		t.Fatalf("loaded %v, %v", got, err)
	}
	if _, err := LoadKey(p + ".missing"); err == nil || !strings.Contains(err.Error(), "gridnode farm keygen") {
		t.Fatalf("missing key: %v", err)
	}
}

// Sizes are round.BytesShort's, tested there.
func TestAgo(t *testing.T) {
	now := time.Now()
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	for _, c := range []struct {
		t    *time.Time
		want string
	}{{nil, "never"}, {ago(12 * time.Second), "12s ago"}, {ago(3 * time.Minute), "3m ago"}, {ago(5 * time.Hour), "5h ago"}, {ago(72 * time.Hour), "3d ago"}} {
		if got := Ago(c.t, now); got != c.want {
			t.Errorf("Ago = %q, want %q", got, c.want)
		}
	}
	if ResolveRegistrar("") != DefaultRegistrar || ResolveRegistrar("main") != "https://registrar.prod4.threefold.me" || ResolveRegistrar("http://x:1") != "http://x:1" {
		t.Error("ResolveRegistrar")
	}
}
