package image

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/workload/image/imagetest"
)

// fast retries: the tests cut connections on purpose.
var fast = backoff.Policy{Base: time.Millisecond, Max: 10 * time.Millisecond}

func open(t *testing.T, opt Options) *Store {
	t.Helper()
	opt.Backoff = fast
	s, err := Open(t.TempDir(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bigImage is an image whose one layer holds size random bytes (gzip does
// not shrink them), and that layer's digest.
func bigImage(t *testing.T, size int) (v1.Image, v1.Hash) {
	t.Helper()
	blob := make([]byte, size)
	rand.Read(blob)
	l := imagetest.Layer(t, map[string]string{"data": string(blob)})
	d, _ := l.Digest()
	return imagetest.Image(t, v1.Config{Cmd: []string{"/data"}}, l), d
}

func size(t *testing.T, img v1.Image) int64 {
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// TestPullAndGet: a tag is pinned to its digest; the pull stores every
// blob and lists the image in index.json; the root has the layers applied
// (whiteouts too); afterwards the image and its root come from the store
// with the registry gone.
func TestPullAndGet(t *testing.T) {
	reg := imagetest.Start(t)
	img := imagetest.Image(t, v1.Config{Entrypoint: []string{"/bin/app"}, Env: []string{"A=1"}},
		imagetest.Layer(t, map[string]string{"bin/": "", "bin/app": "#!app", "etc/old": "x", "etc/keep": "k", "sh -> bin/app": ""}),
		imagetest.Layer(t, map[string]string{"etc/.wh.old": "", "etc/new": "n"}))
	tag, pinned := reg.Push(t, "app:1", img)
	s := open(t, Options{})
	ctx := context.Background()

	got, err := s.Pin(ctx, tag, nil)
	if err != nil || got != pinned {
		t.Fatalf("Pin(%s) = %s, %v; want %s", tag, got, err, pinned)
	}
	if again, _ := s.Pin(ctx, pinned, nil); again != pinned {
		t.Fatalf("Pin of a pinned reference = %s", again)
	}
	if _, err := s.Pin(ctx, reg.Host+"/app:nope", nil); !errors.Is(err, ErrNotFound) || !Permanent(err) {
		t.Fatalf("Pin of a missing tag = %v; want a permanent ErrNotFound", err)
	}
	var last [2]int64
	im, err := s.Pull(ctx, pinned, nil, func(d, t int64) { last = [2]int64{d, t} })
	if err != nil {
		t.Fatal(err)
	}
	if im.Config.Entrypoint[0] != "/bin/app" || len(im.Layers) != 2 || last[0] != last[1] || last[1] != size(t, img) {
		t.Fatalf("pulled %+v, last progress %v; want entrypoint /bin/app, 2 layers, progress %d of %d", im, last, size(t, img), size(t, img))
	}
	idx, _ := os.ReadFile(filepath.Join(s.Dir(), "index.json"))
	if !strings.Contains(string(idx), pinned) {
		t.Fatalf("index.json does not list %s:\n%s", pinned, idx)
	}
	root, err := s.RootFS(ctx, im)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"bin/app": "#!app", "etc/keep": "k", "etc/new": "n", "sh": "#!app"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
			t.Errorf("%s in the root = %q, %v; want %q", p, b, err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/old")); !os.IsNotExist(err) {
		t.Errorf("etc/old survived its whiteout: %v", err)
	}

	reg.Close()
	s2, err := Open(s.Dir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	off, err := s2.Get(pinned)
	if err != nil || off.Manifest != im.Manifest {
		t.Fatalf("Get with the registry gone = %+v, %v", off, err)
	}
	if _, err := s2.Pull(ctx, pinned, nil, nil); err != nil {
		t.Fatalf("Pull of a stored image with the registry gone: %v", err)
	}
	if r2, err := s2.RootFS(ctx, off); err != nil || r2 != root {
		t.Fatalf("RootFS again = %s, %v; want %s", r2, err, root)
	}
	if _, err := s2.Get(strings.Replace(pinned, "app@", "other@", 1)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Get of an image never pulled: %v", err)
	}
}

// TestResumeAfterCut: the registry cuts the connection once in the middle
// of the layer; the pull completes, asks for the rest with a range, and the
// bytes served in total stay under twice the image's size.
func TestResumeAfterCut(t *testing.T) {
	reg := imagetest.Start(t)
	img, layer := bigImage(t, 4<<20)
	_, pinned := reg.Push(t, "big:1", img)
	total := size(t, img)
	reg.Served.Store(0)
	reg.CutOnce(layer.String(), total/2)
	s := open(t, Options{})
	if _, err := s.Pull(context.Background(), pinned, nil, nil); err != nil {
		t.Fatal(err)
	}
	if served := reg.Served.Load(); served >= 2*total {
		t.Fatalf("served %d bytes for a %d-byte image; want under twice", served, total)
	}
	var ranged bool
	for _, r := range reg.Requests() {
		if strings.Contains(r, layer.String()) && strings.Contains(r, "Range: bytes=") {
			ranged = true
		}
	}
	if !ranged {
		t.Fatalf("no ranged request for the rest of the layer: %q", reg.Requests())
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), "partial")); len(ents) != 0 {
		t.Fatalf("partial downloads left: %v", ents)
	}
}

// TestDigestMismatch: content that does not match its digest is refused,
// and nothing of it stays in the store.
func TestDigestMismatch(t *testing.T) {
	reg := imagetest.Start(t)
	img, layer := bigImage(t, 64<<10)
	_, pinned := reg.Push(t, "bad:1", img)
	reg.Corrupt(layer.String())
	s := open(t, Options{})
	_, err := s.Pull(context.Background(), pinned, nil, nil)
	if !errors.Is(err, ErrDigestMismatch) || !Permanent(err) {
		t.Fatalf("Pull of a corrupted layer = %v; want ErrDigestMismatch", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "blobs", "sha256", layer.Hex)); !os.IsNotExist(err) {
		t.Fatalf("the corrupted layer is in blobs/: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), "partial")); len(ents) != 0 {
		t.Fatalf("partial downloads left: %v", ents)
	}
	if _, err := s.Get(pinned); err == nil {
		t.Fatal("the image is listed although its layer was refused")
	}
}

// TestMirror: with the image's registry down the mirror serves it; with
// the mirror lacking it the image's registry does. The pinned reference
// always names the image's own registry.
func TestMirror(t *testing.T) {
	origin, mirror := imagetest.Start(t), imagetest.Start(t)
	img := imagetest.Image(t, v1.Config{}, imagetest.Layer(t, map[string]string{"f": "mirrored"}))
	tag, pinned := origin.Push(t, "lib/app:1", img)
	mirror.Push(t, "lib/app:1", img)
	ctx := context.Background()

	origin.SetDown(true)
	s := open(t, Options{Mirror: mirror.Host})
	if got, err := s.Pin(ctx, tag, nil); err != nil || got != pinned {
		t.Fatalf("Pin through the mirror = %s, %v; want %s", got, err, pinned)
	}
	if _, err := s.Pull(ctx, pinned, nil, nil); err != nil {
		t.Fatalf("Pull with the origin down: %v", err)
	}

	origin.SetDown(false)
	other := imagetest.Image(t, v1.Config{}, imagetest.Layer(t, map[string]string{"f": "origin only"}))
	_, pinned2 := origin.Push(t, "lib/other:1", other)
	if _, err := s.Pull(ctx, pinned2, nil, nil); err != nil {
		t.Fatalf("Pull of an image the mirror lacks: %v", err)
	}
}

// TestCredentials: a registry that wants a login refuses an anonymous pull
// with a clear, permanent error, and serves the deployment's credentials.
func TestCredentials(t *testing.T) {
	reg := imagetest.Start(t)
	img := imagetest.Image(t, v1.Config{}, imagetest.Layer(t, map[string]string{"f": "private"}))
	_, pinned := reg.Push(t, "private/app:1", img)
	reg.Guard = func(r *http.Request) int {
		if u, p, ok := r.BasicAuth(); ok && u == "me" && p == "secret" {
			return 0
		}
		return 401
	}
	s := open(t, Options{})
	_, err := s.Pull(context.Background(), pinned, nil, nil)
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("anonymous pull of a private image = %v; want ErrDenied saying to give credentials", err)
	}
	creds := []deployment.Credential{{Registry: reg.Host, Username: "me", Password: "secret"}}
	if _, err := s.Pull(context.Background(), pinned, creds, nil); err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}
}

// TestGC: collecting keeps what the kept images need (a shared layer
// too), and removes the rest: blobs, roots, index entries.
func TestGC(t *testing.T) {
	reg := imagetest.Start(t)
	base := imagetest.Layer(t, map[string]string{"base": "shared"})
	a := imagetest.Image(t, v1.Config{}, base, imagetest.Layer(t, map[string]string{"a": "a"}))
	bOnly := imagetest.Layer(t, map[string]string{"b": "b"})
	b := imagetest.Image(t, v1.Config{}, base, bOnly)
	_, pa := reg.Push(t, "a:1", a)
	_, pb := reg.Push(t, "b:1", b)
	s := open(t, Options{})
	ctx := context.Background()
	var roots []string
	for _, p := range []string{pa, pb} {
		im, err := s.Pull(ctx, p, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.RootFS(ctx, im)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, r)
	}
	freed, err := s.GC(func() []string { return []string{pa} })
	if err != nil || freed == 0 {
		t.Fatalf("GC = %d, %v", freed, err)
	}
	if _, err := s.Get(pa); err != nil {
		t.Fatalf("the kept image: %v", err)
	}
	if _, err := os.Stat(roots[0]); err != nil {
		t.Fatalf("the kept image's root: %v", err)
	}
	if _, err := s.Get(pb); err == nil {
		t.Fatal("the collected image is still listed")
	}
	if _, err := os.Stat(roots[1]); !os.IsNotExist(err) {
		t.Fatalf("the collected image's root: %v", err)
	}
	bd, _ := bOnly.Digest()
	sd, _ := base.Digest()
	if _, err := os.Stat(filepath.Join(s.Dir(), "blobs/sha256", bd.Hex)); !os.IsNotExist(err) {
		t.Fatal("the collected image's own layer is still there")
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "blobs/sha256", sd.Hex)); err != nil {
		t.Fatal("the shared layer was collected")
	}
}

// TestIndex: from a multi-platform image the pull takes the node's
// platform, and says which platforms there are when it has none.
func TestIndex(t *testing.T) {
	reg := imagetest.Start(t)
	mine := imagetest.Image(t, v1.Config{Cmd: []string{"mine"}}, imagetest.Layer(t, map[string]string{"f": "mine"}))
	theirs := imagetest.Image(t, v1.Config{Cmd: []string{"theirs"}}, imagetest.Layer(t, map[string]string{"f": "theirs"}))
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: theirs, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}})
	tag, err := name.NewTag(reg.Host + "/multi:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	pinned := tag.Context().Digest(d.String()).String()
	im, err := open(t, Options{}).Pull(context.Background(), pinned, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := mine.Digest()
	if im.Manifest != md || im.Digest != d || im.Config.Cmd[0] != "mine" {
		t.Fatalf("pulled manifest %s (cmd %v); want this platform's %s", im.Manifest, im.Config.Cmd, md)
	}
	_, err = open(t, Options{Platform: v1.Platform{OS: "linux", Architecture: "s390x"}}).Pull(context.Background(), pinned, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no image for linux/s390x") {
		t.Fatalf("pull for a platform the index lacks = %v", err)
	}
}
