// Package farm is the farmer's side of the grid: a key, an account, farms,
// and a look at the farm's nodes, against any registrar (the project's own
// or ThreeFold's). `gridnode farm` is a thin command line over it.
package farm

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/internal/round"
	"github.com/tyler-smith/go-bip39"
)

// DefaultRegistrar is the registrar a farmer talks to when none is named: a
// registrar run on the same machine (`gridnode registrar`).
const DefaultRegistrar = "http://127.0.0.1:8080"

// ResolveRegistrar is api.ResolveRegistrar with "" meaning DefaultRegistrar;
// a value that is no registrar comes back trimmed, for client.New to say
// what is wrong with it.
func ResolveRegistrar(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultRegistrar
	}
	if u, err := api.ResolveRegistrar(s); err == nil {
		return u
	}
	return s
}

// DefaultKeyPath is ~/.config/gridnode/farmer.key (or the platform's
// configuration folder).
func DefaultKeyPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = filepath.Join(os.Getenv("HOME"), ".config")
	}
	return filepath.Join(dir, "gridnode", "farmer.key")
}

// NewKey makes a farmer key from 32 bytes of entropy read from r (nil:
// crypto/rand) and returns it with its 24-word BIP-39 mnemonic, from which
// KeyFromMnemonic makes the same key again.
func NewKey(r io.Reader) (ed25519.PrivateKey, string, error) {
	if r == nil {
		r = rand.Reader
	}
	entropy := make([]byte, 32)
	if _, err := io.ReadFull(r, entropy); err != nil {
		return nil, "", fmt.Errorf("farmer key: reading randomness: %w", err)
	}
	words, err := bip39.NewMnemonic(entropy)
	if err != nil {
		return nil, "", fmt.Errorf("farmer key: %w", err)
	}
	key, err := keyFromEntropy(entropy)
	return key, words, err
}

// KeyFromMnemonic makes the key a mnemonic of NewKey stands for. The seed
// is derived as substrate-bip39 derives its mini secret key (PBKDF2-SHA512
// of the entropy, salt "mnemonic", 2048 rounds, first 32 bytes), the way
// ThreeFold's tools turn a mnemonic into an ed25519 key.
func KeyFromMnemonic(words string) (ed25519.PrivateKey, error) {
	words = strings.Join(strings.Fields(strings.ToLower(words)), " ")
	entropy, err := bip39.EntropyFromMnemonic(words)
	if err != nil {
		return nil, fmt.Errorf("farmer key: the mnemonic is not valid (%v): check the words and their order", err)
	}
	return keyFromEntropy(entropy)
}

func keyFromEntropy(entropy []byte) (ed25519.PrivateKey, error) {
	seed, err := pbkdf2.Key(sha512.New, string(entropy), []byte("mnemonic"), 2048, 64)
	if err != nil {
		return nil, fmt.Errorf("farmer key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed[:32]), nil
}

// SaveKey writes the key's 32-byte seed, in hex, to path with mode 0600. It
// refuses to replace an existing key unless force: a lost key is a lost farm.
func SaveKey(path string, key ed25519.PrivateKey, force bool) error {
	if !force {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("farmer key %s exists already; keep it, or pass --force to replace it (the farms of the old key stay with the old key)", path)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("farmer key: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(hex.EncodeToString(key.Seed())+"\n"), 0o600); err != nil {
		return fmt.Errorf("farmer key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("farmer key: %w", err)
	}
	return nil
}

// LoadKey reads a key SaveKey wrote (hex of the 32-byte seed; a raw 32-byte
// seed is accepted too).
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("farmer key %s not found: run `gridnode farm keygen` first, or pass --key FILE", path)
	}
	if err != nil {
		return nil, fmt.Errorf("farmer key: %w", err)
	}
	if len(b) == ed25519.SeedSize {
		return ed25519.NewKeyFromSeed(b), nil
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("farmer key %s: want the hex of a 32-byte seed", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// CreateFarm ensures the farmer's account, checks the farm's name and
// Stellar address before asking the registrar, and creates the farm.
func CreateFarm(ctx context.Context, c *client.Client, name, stellar string, dedicated bool) (uint64, error) {
	if name == "" || len(name) > 40 || strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) >= 0 {
		return 0, fmt.Errorf("farm name %q: want 1 to 40 letters and digits, nothing else", name)
	}
	if len(stellar) != 56 || stellar[0] != 'G' || strings.ToUpper(stellar) != stellar {
		return 0, fmt.Errorf("stellar address %q: want the 56-character public address that starts with G", stellar)
	}
	if _, err := c.EnsureAccount(ctx); err != nil {
		return 0, fmt.Errorf("farmer account: %w", err)
	}
	id, err := c.CreateFarm(ctx, api.CreateFarm{FarmName: name, StellarAddress: stellar, Dedicated: dedicated})
	if client.StatusOf(err) == 409 {
		return 0, fmt.Errorf("farm name %q is taken: choose another (%w)", name, err)
	}
	return id, err
}

// MyFarms lists the farms of the client's key; none when it has no account.
func MyFarms(ctx context.Context, c *client.Client) ([]api.Farm, error) {
	a, err := c.AccountByKey(ctx, c.PublicKey())
	if client.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return walk(c, func(page int, after uint64) ([]api.Farm, error) {
		return c.Farms(ctx, client.FarmFilter{TwinID: a.TwinID, Page: page, After: after, Size: pageSize})
	}, func(f api.Farm) uint64 { return f.FarmID })
}

const pageSize = 100

// walk lists every record, a page of pageSize at a time, until a short
// page: after the last id (keyset: every page costs the registrar the
// same) when the registrar speaks api.ExtAfter — which its first answer
// says —, by page number otherwise (the reference registrar).
func walk[T any](c *client.Client, list func(page int, after uint64) ([]T, error), id func(T) uint64) ([]T, error) {
	var all []T
	for page := 1; ; page++ {
		p, after := page, uint64(0)
		if page > 1 && c.Extension(api.ExtAfter) {
			p, after = 0, id(all[len(all)-1])
		}
		got, err := list(p, after)
		if err != nil {
			return all, err
		}
		all = append(all, got...)
		if len(got) < pageSize {
			return all, nil
		}
	}
}

// Nodes lists every node of the farms, page after page.
func Nodes(ctx context.Context, c *client.Client, farms ...uint64) ([]api.Node, error) {
	var all []api.Node
	for _, f := range farms {
		nodes, err := walk(c, func(page int, after uint64) ([]api.Node, error) {
			return c.Nodes(ctx, client.NodeFilter{FarmID: f, Page: page, After: after, Size: pageSize})
		}, func(n api.Node) uint64 { return n.NodeID })
		if err != nil && !client.IsNotFound(err) { // some registrars answer an empty list with 404
			return nil, err
		}
		all = append(all, nodes...)
	}
	slices.SortFunc(all, func(a, b api.Node) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return all, nil
}

// WriteNodes prints nodes as a table: node, twin, farm, online, approved,
// capacity, last seen (relative to now).
func WriteNodes(w io.Writer, nodes []api.Node, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tTWIN\tFARM\tONLINE\tAPPROVED\tCRU\tMRU\tSRU\tHRU\tSERIAL\tLAST SEEN")
	for _, n := range nodes {
		online := "no"
		if n.Online || (n.LastSeen != nil && now.Sub(*n.LastSeen) < api.OnlineWindow) {
			online = "yes"
		}
		approved := "no"
		if n.Approved {
			approved = "yes"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", n.NodeID, n.TwinID, n.FarmID, online, approved,
			n.Resources.CRU, round.BytesShort(n.Resources.MRU), round.BytesShort(n.Resources.SRU), round.BytesShort(n.Resources.HRU), n.SerialNumber, Ago(n.LastSeen, now))
	}
	return tw.Flush()
}

// Ago says how long ago t was: "never", "12s ago", "3m ago", "5h ago", "2d ago".
func Ago(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	d := now.Sub(*t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
