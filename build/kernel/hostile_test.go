package kernel

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/gridnode/gridnode/internal/loopback"
	"github.com/gridnode/gridnode/internal/untar"
)

// loopbackOnly is the pulls' transport in these tests: it carries requests
// to the loopback and records, without sending, any other.
type loopbackOnly struct {
	mu      sync.Mutex
	refused []string
}

func (l *loopbackOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if !loopback.Host(req.URL.Hostname()) {
		l.mu.Lock()
		l.refused = append(l.refused, req.URL.String())
		l.mu.Unlock()
		return nil, errors.New("test: no network but the loopback")
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (l *loopbackOnly) urls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.refused...)
}

func useTransport(t *testing.T) *loopbackOnly {
	l := &loopbackOnly{}
	old := transport
	transport = l
	t.Cleanup(func() { transport = old })
	return l
}

// push writes an image of one layer holding files (name → content) to
// the registry at host, as ref, and returns its digest.
func push(t *testing.T, host, repo string, files ...[2]string) (string, v1.Hash) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg})
		io.WriteString(tw, f[1])
	}
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/" + repo
	r, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref, d
}

func modulesTar(t *testing.T, entries ...[2]string) string {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e[0], Mode: 0o644, Size: int64(len(e[1])), Typeflag: tar.TypeReg}
		if target, ok := strings.CutPrefix(e[1], "->"); ok {
			h = &tar.Header{Name: e[0], Typeflag: tar.TypeSymlink, Linkname: target}
		}
		tw.WriteHeader(h)
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, e[1])
		}
	}
	tw.Close()
	return b.String()
}

// A kernel on a registry at a private address is pulled over HTTPS only:
// the plain-HTTP fallback go-containerregistry tries for such hosts is
// refused before anything is sent.
func TestOCINoPlainHTTPBeyondLoopback(t *testing.T) {
	tr := useTransport(t)
	_, err := Resolve(context.Background(), Source{OCI: "10.1.2.3:5000/gridnode/kernel:6.1"}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "plain HTTP to 10.1.2.3:5000 refused") {
		t.Fatalf("pull from a private address: %v; want the plain-HTTP fallback refused", err)
	}
	for _, u := range tr.urls() {
		if !strings.HasPrefix(u, "https://") {
			t.Errorf("a request went out over plain HTTP: %s", u)
		}
	}
}

// A loopback registry (plain HTTP, allowed) that redirects the layer to a
// blob store over plain HTTP elsewhere: the redirect is refused.
func TestOCIRedirectToPlainHTTPRefused(t *testing.T) {
	useTransport(t)
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/sha256:") && r.Method == http.MethodGet && r.Header.Get("X-Push") == "" && pulling.Load() {
			http.Redirect(w, r, "http://192.0.2.1:9000"+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ref, _ := push(t, strings.TrimPrefix(srv.URL, "http://"), "k:1", [2]string{"kernel", "BZIMAGE"}, [2]string{"kernel.tar", modulesTar(t, [2]string{"lib/modules/6.1.0-x/kernel/a.ko", "KO"})})
	pulling.Store(true)
	defer pulling.Store(false)
	_, err := Resolve(context.Background(), Source{OCI: ref}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "plain HTTP to 192.0.2.1:9000 refused") {
		t.Fatalf("pull with a plain-HTTP redirect: %v; want it refused", err)
	}
}

// The kernel's origin (the manifest's input) names the image by the
// digest that was pulled: the tag moving later does not change what the
// manifest says was built.
func TestOCIPinsDigest(t *testing.T) {
	useTransport(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	files := func(v string) [][2]string {
		return [][2]string{{"kernel", "BZIMAGE-" + v}, {"kernel.tar", modulesTar(t, [2]string{"lib/modules/6.1.0-" + v + "/kernel/a.ko", "KO"})}}
	}
	ref, d1 := push(t, host, "k:6.1", files("one")...)
	k, err := Resolve(context.Background(), Source{OCI: ref}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if k.Origin.Version != d1.String() || k.Origin.SHA256 != d1.Hex || k.Origin.Name != host+"/k" {
		t.Fatalf("origin %+v; want %s@%s", k.Origin, host+"/k", d1)
	}
	_, d2 := push(t, host, "k:6.1", files("two")...) // the tag moves
	pinned, err := Resolve(context.Background(), Source{OCI: k.Origin.Name + "@" + k.Origin.Version}, t.TempDir())
	if err != nil || pinned.Release != "6.1.0-one" || d2 == d1 {
		t.Fatalf("pulling by the recorded digest: %+v, %v; want the first image again", pinned, err)
	}
}

// A kernel image whose modules tree writes through a link it made, or
// whose layers unpack to more than the cap, is refused with a clear error
// and writes nothing outside the cache.
func TestOCIHostileKernelImage(t *testing.T) {
	useTransport(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	outside := t.TempDir()
	through, _ := push(t, host, "through:1", [2]string{"kernel", "BZIMAGE"},
		[2]string{"kernel.tar", modulesTar(t, [2]string{"lib", "->" + outside}, [2]string{"lib/owned", "x"})})
	if _, err := Resolve(context.Background(), Source{OCI: through}, t.TempDir()); !errors.Is(err, untar.ErrUnsafe) {
		t.Errorf("modules tree through a link: %v; want it refused as unsafe", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "owned")); err == nil {
		t.Error("a file was written through the link")
	}

	oldImage, oldKernel := maxImage, maxKernel
	maxImage, maxKernel = 8<<20, 4<<20
	t.Cleanup(func() { maxImage, maxKernel = oldImage, oldKernel })
	zeros := strings.Repeat("\x00", 32<<20)
	for name, files := range map[string][][2]string{
		"kernel": {{"kernel", zeros}},
		"layer":  {{"kernel", "BZIMAGE"}, {"kernel.tar", modulesTar(t, [2]string{"lib/modules/6.1.0-x/kernel/a.ko", zeros})}},
	} {
		ref, _ := push(t, host, "bomb-"+name+":1", files...)
		_, err := Resolve(context.Background(), Source{OCI: ref}, t.TempDir())
		if !errors.Is(err, untar.ErrTooLarge) {
			t.Errorf("%s bomb: %v; want it stopped at the cap", name, err)
		}
	}
}

// pulling makes the redirecting registry redirect (pushes are left alone).
var pulling atomic.Bool
