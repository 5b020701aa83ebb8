package release_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/gridnode/gridnode/build/release"
	"github.com/gridnode/gridnode/build/spec"
	"github.com/gridnode/gridnode/internal/need"
)

// releaseDir makes a small release folder with a subfolder.
func releaseDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"gridnode-1.0.iso":   strings.Repeat("iso", 5000),
		"vmlinuz":            "kernel",
		"pxe/boot.ipxe":      "#!ipxe\n",
		"pxe/initrd":         strings.Repeat("\x00initrd", 1000),
		"manifest.json":      `{"version":"1.0"}`,
		"gridnode.spdx.json": "{}",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestChecksums(t *testing.T) {
	dir := releaseDir(t)
	if err := release.Checksums(dir); err != nil {
		t.Fatal(err)
	}
	// Twice: the second run must not list the first's SHA256SUMS.
	if err := release.Checksums(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	line := regexp.MustCompile(`^[0-9a-f]{64}  (\S+)$`)
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("SHA256SUMS line %q is not in sha256sum format", l)
		}
		names = append(names, m[1])
	}
	want := []string{"gridnode-1.0.iso", "gridnode.spdx.json", "manifest.json", "pxe/boot.ipxe", "pxe/initrd", "vmlinuz"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("SHA256SUMS lists %v, want %v", names, want)
	}
	sha256sum := need.Tool(t, "sha256sum")
	cmd := exec.Command(sha256sum, "--strict", "-c", "SHA256SUMS")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	// And it catches a changed file.
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("tampered"), 0o644)
	cmd = exec.Command(sha256sum, "--quiet", "-c", "SHA256SUMS")
	cmd.Dir = dir
	if err := cmd.Run(); err == nil {
		t.Error("sha256sum -c accepted a changed file")
	}
}

// nodeBinary compiles testdata/node, a small program standing in for the
// node program, linking one module dependency.
func nodeBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "init")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/node")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestSBOM(t *testing.T) {
	deb := filepath.Join(t.TempDir(), "linux-image.deb")
	os.WriteFile(deb, []byte("not really a deb"), 0o644)
	const debSum = "2aa5b79a98d53c43f7622104dfc44c321c2f09b37c457c795b86b36c7a28ad26" // sha256 of "not really a deb"
	in := release.SBOMInput{
		Version:    "1.2.3",
		Epoch:      time.Unix(1700000000, 0),
		NodeBinary: nodeBinary(t),
		Debs: []release.Deb{
			{Name: "linux-image-6.1.0-56-amd64", Version: "6.1.192-2", Path: deb},
			{Name: "busybox-static", Version: "1:1.35.0-4+deb12u1+b1", SHA256: strings.Repeat("ab", 32)},
		},
	}
	var a, b bytes.Buffer
	if err := release.SBOM(&a, in); err != nil {
		t.Fatal(err)
	}
	if err := release.SBOM(&b, in); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two SBOMs of the same input differ")
	}
	validateSPDX(t, a.Bytes())

	var doc struct {
		DocumentNamespace string
		CreationInfo      struct{ Created string }
		Packages          []struct {
			Name         string
			VersionInfo  string
			Checksums    []struct{ Algorithm, ChecksumValue string }
			ExternalRefs []struct{ ReferenceType, ReferenceLocator string }
		}
	}
	json.Unmarshal(a.Bytes(), &doc)
	if doc.CreationInfo.Created != "2023-11-14T22:13:20Z" {
		t.Errorf("created = %q, want the epoch", doc.CreationInfo.Created)
	}
	purls := map[string]bool{}
	for _, p := range doc.Packages {
		for _, r := range p.ExternalRefs {
			purls[r.ReferenceLocator] = true
		}
		if p.Name == "linux-image-6.1.0-56-amd64" && (len(p.Checksums) != 1 || p.Checksums[0].ChecksumValue != debSum) {
			t.Errorf("linux-image checksums %v, want SHA256 %s", p.Checksums, debSum)
		}
	}
	for _, want := range []string{
		"pkg:deb/debian/linux-image-6.1.0-56-amd64@6.1.192-2?arch=amd64",
		"pkg:deb/debian/busybox-static@1%3A1.35.0-4%2Bdeb12u1%2Bb1?arch=amd64",
		"pkg:golang/github.com/google/go-containerregistry@v0.22.1",
	} {
		if !purls[want] {
			t.Errorf("SBOM has no package with purl %s", want)
		}
	}
	in.Version = "1.2.4"
	var c bytes.Buffer
	release.SBOM(&c, in)
	var doc2 struct{ DocumentNamespace string }
	json.Unmarshal(c.Bytes(), &doc2)
	if doc2.DocumentNamespace == doc.DocumentNamespace {
		t.Error("two versions have the same document namespace")
	}
}

// validateSPDX checks the fields SPDX 2.3 requires of a JSON document
// (clauses 6 and 7 of the specification) and that relationships name
// elements that exist.
func validateSPDX(t *testing.T, b []byte) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("SBOM is not JSON: %v", err)
	}
	str := func(m map[string]any, k string) string {
		s, _ := m[k].(string)
		return s
	}
	if str(doc, "spdxVersion") != "SPDX-2.3" {
		t.Errorf("spdxVersion = %v", doc["spdxVersion"])
	}
	if str(doc, "dataLicense") != "CC0-1.0" {
		t.Errorf("dataLicense = %v", doc["dataLicense"])
	}
	if str(doc, "SPDXID") != "SPDXRef-DOCUMENT" {
		t.Errorf("SPDXID = %v", doc["SPDXID"])
	}
	if str(doc, "name") == "" {
		t.Error("no document name")
	}
	if ns := str(doc, "documentNamespace"); !regexp.MustCompile(`^https?://[^#]+$`).MatchString(ns) {
		t.Errorf("documentNamespace %q is not a URI without #", ns)
	}
	ci, _ := doc["creationInfo"].(map[string]any)
	if _, err := time.Parse("2006-01-02T15:04:05Z", str(ci, "created")); err != nil {
		t.Errorf("creationInfo.created %q: %v", str(ci, "created"), err)
	}
	creators, _ := ci["creators"].([]any)
	creator := regexp.MustCompile(`^(Tool|Organization|Person): .+`)
	if len(creators) == 0 {
		t.Error("creationInfo.creators is empty")
	}
	for _, c := range creators {
		if s, _ := c.(string); !creator.MatchString(s) {
			t.Errorf("creator %v is not Tool:/Organization:/Person:", c)
		}
	}
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	idRE := regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	pkgs, _ := doc["packages"].([]any)
	if len(pkgs) < 3 {
		t.Errorf("only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		m, _ := p.(map[string]any)
		id := str(m, "SPDXID")
		if !idRE.MatchString(id) {
			t.Errorf("package %v: SPDXID %q is malformed", m["name"], id)
		}
		if ids[id] {
			t.Errorf("SPDXID %s used twice", id)
		}
		ids[id] = true
		if str(m, "name") == "" || str(m, "downloadLocation") == "" {
			t.Errorf("package %s lacks name or downloadLocation", id)
		}
		for _, c := range asList(m["checksums"]) {
			cm, _ := c.(map[string]any)
			if str(cm, "algorithm") == "SHA256" && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(str(cm, "checksumValue")) {
				t.Errorf("package %s: SHA256 checksum %q", id, str(cm, "checksumValue"))
			}
		}
	}
	rels := asList(doc["relationships"])
	describes := false
	for _, r := range rels {
		m, _ := r.(map[string]any)
		for _, k := range []string{"spdxElementId", "relatedSpdxElement"} {
			if !ids[str(m, k)] {
				t.Errorf("relationship %v names %s %q, which is not in the document", m, k, str(m, k))
			}
		}
		if str(m, "spdxElementId") == "SPDXRef-DOCUMENT" && str(m, "relationshipType") == "DESCRIBES" {
			describes = true
		}
	}
	if !describes {
		t.Error("no SPDXRef-DOCUMENT DESCRIBES relationship")
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

func TestPushPull(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := releaseDir(t)
	if err := release.Checksums(dir); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	digest, err := release.Push(ctx, dir, host+"/gridnode/release:1.0")
	if err != nil {
		t.Fatal(err)
	}
	// Pushing the same folder again gives the same manifest.
	again, err := release.Push(ctx, dir, host+"/gridnode/release:1.0-again")
	if err != nil || again != digest {
		t.Errorf("second push: digest %s, %v; want %s", again, err, digest)
	}
	for _, ref := range []string{host + "/gridnode/release:1.0", host + "/gridnode/release@" + digest} {
		out := t.TempDir()
		got, err := release.Pull(ctx, ref, out, nil)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if got != digest {
			t.Errorf("pull %s: digest %s, want %s", ref, got, digest)
		}
		sameTree(t, dir, out)
	}
	// A digest the registry does not have is an error, not an empty folder.
	bad := host + "/gridnode/release@sha256:" + strings.Repeat("0", 64)
	if _, err := release.Pull(ctx, bad, t.TempDir(), nil); err == nil {
		t.Error("pull of a missing digest succeeded")
	}
}

func sameTree(t *testing.T, a, b string) {
	t.Helper()
	filepath.Walk(a, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s: pulled copy differs (%v)", rel, err)
		}
		return nil
	})
	n := 0
	filepath.Walk(b, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n++
		}
		return err
	})
	if n != 7 {
		t.Errorf("pulled %d files, want 7", n)
	}
}

// Build refuses, before building anything, a version that cannot be a file
// name and a folder that already holds files (a release folder holds one
// release only).
func TestBuildRefuses(t *testing.T) {
	s := &spec.Spec{}
	for _, v := range []string{"", "1.0/evil", "1 0"} {
		if _, err := release.Build(context.Background(), release.BuildOptions{Spec: s, Version: v, Out: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "version") {
			t.Errorf("version %q: err = %v, want one about the version", v, err)
		}
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "old.iso"), []byte("x"), 0o644)
	if _, err := release.Build(context.Background(), release.BuildOptions{Spec: s, Version: "1.0", Out: full}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty folder: err = %v, want one saying it is not empty", err)
	}
	if _, err := os.Stat(filepath.Join(full, "old.iso")); err != nil {
		t.Errorf("the refused folder was changed: %v", err)
	}
}
