// Package imagetest serves OCI images from go-containerregistry's
// in-process registry on loopback, counting what it serves and able to cut
// a download once, and builds small images from files, for the tests of the
// image store, the workloads module and the CLI.
package imagetest

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
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
)

// Registry is an in-process registry on 127.0.0.1.
type Registry struct {
	// Host is host:port, as image references name it.
	Host string
	srv  *httptest.Server

	// Served counts the bytes of blob bodies served.
	Served atomic.Int64

	mu       sync.Mutex
	requests []string // "GET /v2/...blobs/sha256:... Range: ..."
	cut      map[string]int64
	corrupt  map[string]bool
	down     bool
	// Guard, when set, may refuse a request with a status (auth tests).
	Guard func(r *http.Request) int
}

// Start serves a registry until the test ends.
func Start(t testing.TB) *Registry {
	r := &Registry{cut: map[string]int64{}, corrupt: map[string]bool{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.Method+" "+req.URL.Path+" Range: "+req.Header.Get("Range"))
		down, guard := r.down, r.Guard
		limit, cut := int64(-1), false
		corrupt := false
		for digest, n := range r.cut {
			if strings.HasSuffix(req.URL.Path, "/blobs/"+digest) && req.Method == http.MethodGet {
				limit, cut = n, true
				delete(r.cut, digest)
			}
		}
		for digest := range r.corrupt {
			if strings.HasSuffix(req.URL.Path, "/blobs/"+digest) && req.Method == http.MethodGet {
				corrupt = true
			}
		}
		r.mu.Unlock()
		if down {
			http.Error(w, "registry down", http.StatusServiceUnavailable)
			return
		}
		if guard != nil {
			if code := guard(req); code != 0 {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"credentials required"}]}`, code)
				return
			}
		}
		cw := &countWriter{ResponseWriter: w, r: r, limit: limit, cut: cut, corrupt: corrupt, blob: strings.Contains(req.URL.Path, "/blobs/")}
		reg.ServeHTTP(cw, req)
	}))
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	t.Cleanup(r.srv.Close)
	return r
}

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }

// SetDown makes the registry answer 503 to everything (or serve again).
func (r *Registry) SetDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// CutOnce makes the next GET of blob digest ("sha256:...") end, connection
// closed, after n bytes of its body.
func (r *Registry) CutOnce(digest string, n int64) {
	r.mu.Lock()
	r.cut[digest] = n
	r.mu.Unlock()
}

// Corrupt makes every GET of blob digest serve one byte changed.
func (r *Registry) Corrupt(digest string) {
	r.mu.Lock()
	r.corrupt[digest] = true
	r.mu.Unlock()
}

// Requests returns the requests served so far, "METHOD PATH Range: R".
func (r *Registry) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// countWriter counts blob bytes, cuts after limit, flips a byte.
type countWriter struct {
	http.ResponseWriter
	r       *Registry
	limit   int64
	cut     bool
	corrupt bool
	blob    bool
	n       int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	if c.cut && c.n+int64(len(b)) > c.limit {
		b = b[:c.limit-c.n]
		c.ResponseWriter.Write(b)
		c.r.Served.Add(int64(len(b)))
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // net/http closes the connection
	}
	if c.corrupt && c.n == 0 && len(b) > 0 {
		b = slices.Clone(b)
		b[0] ^= 0xff
	}
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	if c.blob {
		c.r.Served.Add(int64(n))
	}
	return n, err
}

// Layer is a tar layer of files (name → content; a name ending in / is a
// folder; "name -> target" makes a symlink), gzip-compressed.
func Layer(t testing.TB, files map[string]string) v1.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o755, Typeflag: tar.TypeReg, Size: int64(len(files[n]))}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		} else if name, target, ok := strings.Cut(n, " -> "); ok {
			h.Name, h.Linkname, h.Typeflag, h.Size = name, target, tar.TypeSymlink, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, files[n])
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Image is an image of layers (lowest first) with cfg as its config.
func Image(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// Push pushes img as ref (a tag in this registry, "repo:tag") and returns
// the full tag reference and the pinned one (REPO@sha256:...).
func (r *Registry) Push(t testing.TB, ref string, img v1.Image) (tag, pinned string) {
	t.Helper()
	tg, err := name.NewTag(r.Host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tg, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tg.String(), tg.Context().Digest(d.String()).String()
}
