package tests

// The release pipeline of issue 5, through the same script `make release`
// runs (.ci/release.sh with the gridnode command): two releases of the same
// checkout and SOURCE_DATE_EPOCH are byte-identical file by file; the folder
// has every format, the manifest, SHA256SUMS and an SPDX 2.3 JSON SBOM that
// lists the node program's Go modules and the Debian packages (kernel,
// firmware, boot loaders) with their versions; `gridnode release push` to
// go-containerregistry's in-process registry and `gridnode release pull` by
// tag and by digest give the folder back unchanged. Issue 13: the release is
// signed with a key from `gridnode release keygen` (RELEASE_KEY), the pull
// verifies it with the public half, and push refuses an unsigned folder.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/testutil"

	"github.com/google/go-containerregistry/pkg/registry"
)

const releaseVersion = "9.8.7-test"

// makeRelease runs .ci/release.sh VERSION into dist, as make release does.
func makeRelease(t *testing.T, dist, key string) time.Duration {
	t.Helper()
	cmd := exec.Command("bash", ".ci/release.sh", releaseVersion)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GRIDNODE="+gridnodeCLI(t), "DIST="+dist, "RELEASE_KEY="+key,
		"SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch.Unix(), 10))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf(".ci/release.sh %s: %v\n%s", releaseVersion, err, out)
	}
	return time.Since(start)
}

// tree returns the slash-separated names of the regular files under dir.
func releaseTree(t *testing.T, dir string) []string {
	t.Helper()
	var l []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			t.Errorf("%s: not a regular file", p)
		}
		rel, _ := filepath.Rel(dir, p)
		l = append(l, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(l)
	return l
}

// sameTrees fails unless a and b hold the same files with the same bytes.
func sameReleaseTrees(t *testing.T, a, b string) {
	t.Helper()
	la, lb := releaseTree(t, a), releaseTree(t, b)
	if strings.Join(la, "\n") != strings.Join(lb, "\n") {
		t.Fatalf("file lists differ:\n%s\n---\n%s", strings.Join(la, "\n"), strings.Join(lb, "\n"))
	}
	for _, f := range la {
		if x, y := testutil.SHA256File(t, filepath.Join(a, f)), testutil.SHA256File(t, filepath.Join(b, f)); x != y {
			t.Errorf("%s differs: %s in %s, %s in %s", f, x, a, y, b)
		}
	}
}

func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two releases; skipped with -short")
	}
	a, b := filepath.Join(t.TempDir(), "dist"), filepath.Join(t.TempDir(), "dist")
	key := filepath.Join(t.TempDir(), "release.key")
	pub := strings.TrimSpace(runGridnode(t, "release", "keygen", "-o", key))
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 || !strings.HasPrefix(pub, "ed25519:") {
		t.Fatalf("release keygen: key file %v (%v), public key %q", st, err, pub)
	}
	ta := makeRelease(t, a, key)
	tb := makeRelease(t, b, key)
	t.Logf("make release: %.1fs, then %.1fs", ta.Seconds(), tb.Seconds())

	// Every format, the manifest, the SBOM and SHA256SUMS.
	v := releaseVersion
	files := releaseTree(t, a)
	want := []string{"SHA256SUMS", "cmdline", "gridnode-" + v + ".efi", "gridnode-" + v + ".img", "gridnode-" + v + ".iso",
		"gridnode-" + v + ".spdx.json", "initramfs.cpio.zst", "manifest.json",
		"pxe/boot.ipxe", "pxe/initrd", "pxe/ipxe.efi", "pxe/undionly.kpxe", "pxe/vmlinuz", "release.json", "vmlinuz"}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("release folder holds\n  %s\nwant\n  %s", strings.Join(files, " "), strings.Join(want, " "))
	}

	// Two releases, byte-identical file by file.
	sameReleaseTrees(t, a, b)

	// SHA256SUMS covers every other file, with the right sums.
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readRelease(t, filepath.Join(a, "SHA256SUMS"))))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("SHA256SUMS line %q is not in sha256sum's format", sc.Text())
		}
		sums[name] = sum
	}
	for _, f := range files {
		if f == "SHA256SUMS" || f == "release.json" {
			continue
		}
		if got := testutil.SHA256File(t, filepath.Join(a, f)); sums[f] != got {
			t.Errorf("SHA256SUMS says %s for %s, the file is %s", sums[f], f, got)
		}
	}
	if len(sums) != len(files)-2 {
		t.Errorf("SHA256SUMS lists %d files, the folder has %d besides it and release.json", len(sums), len(files)-2)
	}
	if out := runGridnode(t, "release", "verify", a, "--key", pub); !strings.Contains(out, "release "+v+": 14 files, signed") {
		t.Errorf("gridnode release verify: %q", out)
	}

	// The manifest names this version and every boot file with its sum.
	var man struct {
		Version         string
		SourceDateEpoch int64 `json:"source_date_epoch"`
		Inputs          []struct{ Kind, Name, Version, SHA256 string }
		Outputs         []struct {
			Name, SHA256 string
			Size         int64
		}
	}
	if err := json.Unmarshal(readRelease(t, filepath.Join(a, "manifest.json")), &man); err != nil {
		t.Fatal(err)
	}
	if man.Version != v || man.SourceDateEpoch != epoch.Unix() {
		t.Errorf("manifest: version %q, epoch %d; want %q, %d", man.Version, man.SourceDateEpoch, v, epoch.Unix())
	}
	outputs := map[string]bool{}
	for _, o := range man.Outputs {
		outputs[o.Name] = true
		if sums[o.Name] != o.SHA256 {
			t.Errorf("manifest output %s: sha256 %s, the file is %s", o.Name, o.SHA256, sums[o.Name])
		}
	}
	for _, f := range files {
		if f != "SHA256SUMS" && f != "release.json" && f != "manifest.json" && f != "gridnode-"+v+".spdx.json" && !outputs[f] {
			t.Errorf("manifest does not list %s", f)
		}
	}

	checkSBOM(t, readRelease(t, filepath.Join(a, "gridnode-"+v+".spdx.json")), man.Inputs)
	releasePushPull(t, a, b, pub)
}

func readRelease(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SPDX 2.3 JSON, every field the specification defines for the elements the
// SBOM uses; decoding with unknown fields refused catches misspelt ones.
type (
	spdxDocument struct {
		SPDXVersion          string            `json:"spdxVersion"`
		DataLicense          string            `json:"dataLicense"`
		SPDXID               string            `json:"SPDXID"`
		Name                 string            `json:"name"`
		DocumentNamespace    string            `json:"documentNamespace"`
		Comment              string            `json:"comment"`
		DocumentDescribes    []string          `json:"documentDescribes"`
		ExternalDocumentRefs []json.RawMessage `json:"externalDocumentRefs"`
		CreationInfo         struct {
			Created            string   `json:"created"`
			Creators           []string `json:"creators"`
			Comment            string   `json:"comment"`
			LicenseListVersion string   `json:"licenseListVersion"`
		} `json:"creationInfo"`
		Packages      []spdxPackage      `json:"packages"`
		Files         []json.RawMessage  `json:"files"`
		Snippets      []json.RawMessage  `json:"snippets"`
		Relationships []spdxRelationship `json:"relationships"`
		Annotations   []json.RawMessage  `json:"annotations"`
		Extracted     []json.RawMessage  `json:"hasExtractedLicensingInfos"`
	}
	spdxPackage struct {
		SPDXID                  string          `json:"SPDXID"`
		Name                    string          `json:"name"`
		VersionInfo             string          `json:"versionInfo"`
		PackageFileName         string          `json:"packageFileName"`
		Supplier                string          `json:"supplier"`
		Originator              string          `json:"originator"`
		DownloadLocation        string          `json:"downloadLocation"`
		FilesAnalyzed           *bool           `json:"filesAnalyzed"`
		PackageVerificationCode json.RawMessage `json:"packageVerificationCode"`
		Checksums               []struct {
			Algorithm     string `json:"algorithm"`
			ChecksumValue string `json:"checksumValue"`
		} `json:"checksums"`
		Homepage             string   `json:"homepage"`
		SourceInfo           string   `json:"sourceInfo"`
		LicenseConcluded     string   `json:"licenseConcluded"`
		LicenseInfoFromFiles []string `json:"licenseInfoFromFiles"`
		LicenseDeclared      string   `json:"licenseDeclared"`
		CopyrightText        string   `json:"copyrightText"`
		Summary              string   `json:"summary"`
		Description          string   `json:"description"`
		Comment              string   `json:"comment"`
		ExternalRefs         []struct {
			ReferenceCategory string `json:"referenceCategory"`
			ReferenceType     string `json:"referenceType"`
			ReferenceLocator  string `json:"referenceLocator"`
			Comment           string `json:"comment"`
		} `json:"externalRefs"`
		AttributionTexts      []string          `json:"attributionTexts"`
		PrimaryPackagePurpose string            `json:"primaryPackagePurpose"`
		ReleaseDate           string            `json:"releaseDate"`
		BuiltDate             string            `json:"builtDate"`
		ValidUntilDate        string            `json:"validUntilDate"`
		HasFiles              []string          `json:"hasFiles"`
		Annotations           []json.RawMessage `json:"annotations"`
	}
	spdxRelationship struct {
		SPDXElementID      string `json:"spdxElementId"`
		RelationshipType   string `json:"relationshipType"`
		RelatedSPDXElement string `json:"relatedSpdxElement"`
		Comment            string `json:"comment"`
	}
)

var (
	spdxIDRE       = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	spdxCreatorRE  = regexp.MustCompile(`^(Tool|Organization|Person): \S`)
	spdxSupplierRE = regexp.MustCompile(`^(NOASSERTION|(Organization|Person): \S.*)$`)
	purlRE         = regexp.MustCompile(`^pkg:[a-z]+/[^@?#\s]+@[^?#\s]+(\?[a-z]+=[^&#\s]+(&[a-z]+=[^&#\s]+)*)?$`)
	// SPDX 2.3 clause 7.17, 7.10 and 11.1.
	spdxPurposes   = "APPLICATION FRAMEWORK LIBRARY CONTAINER OPERATING-SYSTEM DEVICE FIRMWARE SOURCE ARCHIVE FILE INSTALL OTHER"
	spdxAlgorithms = "SHA1 SHA224 SHA256 SHA384 SHA512 MD2 MD4 MD5 MD6 SHA3-256 SHA3-384 SHA3-512 BLAKE2b-256 BLAKE2b-384 BLAKE2b-512 BLAKE3 ADLER32"
	spdxRelTypes   = "DESCRIBES DESCRIBED_BY CONTAINS CONTAINED_BY DEPENDS_ON DEPENDENCY_OF GENERATED_FROM GENERATES BUILD_TOOL_OF DEV_TOOL_OF OTHER"
)

func spdxOneOf(list, s string) bool {
	for _, w := range strings.Fields(list) {
		if w == s {
			return true
		}
	}
	return false
}

// checkSBOM parses the SBOM as an SPDX 2.3 JSON document, checks what the
// specification requires of it, and that it lists exactly the Go modules
// linked into the node program and every Debian package of the manifest.
func checkSBOM(t *testing.T, b []byte, inputs []struct{ Kind, Name, Version, SHA256 string }) {
	t.Helper()
	var doc spdxDocument
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("SBOM does not parse as SPDX 2.3 JSON: %v", err)
	}
	if dec.More() {
		t.Fatal("SBOM has data after its JSON document")
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" || doc.Name == "" {
		t.Errorf("document header: spdxVersion %q dataLicense %q SPDXID %q name %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXID, doc.Name)
	}
	if u, err := url.Parse(doc.DocumentNamespace); err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(doc.DocumentNamespace, "#") {
		t.Errorf("documentNamespace %q is not an absolute URI without #", doc.DocumentNamespace)
	}
	if created, err := time.Parse("2006-01-02T15:04:05Z", doc.CreationInfo.Created); err != nil || !created.Equal(epoch) {
		t.Errorf("creationInfo.created %q: want the SOURCE_DATE_EPOCH %s (%v)", doc.CreationInfo.Created, epoch.Format(time.RFC3339), err)
	}
	if len(doc.CreationInfo.Creators) == 0 {
		t.Error("creationInfo.creators is empty")
	}
	for _, c := range doc.CreationInfo.Creators {
		if !spdxCreatorRE.MatchString(c) {
			t.Errorf("creator %q", c)
		}
	}

	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	byName := map[string]spdxPackage{}
	var goMods, debs []spdxPackage
	for _, p := range doc.Packages {
		if !spdxIDRE.MatchString(p.SPDXID) || ids[p.SPDXID] {
			t.Errorf("package %q: SPDXID %q malformed or used twice", p.Name, p.SPDXID)
		}
		ids[p.SPDXID] = true
		byName[p.Name] = p
		if p.Name == "" || p.DownloadLocation == "" {
			t.Errorf("package %s: name and downloadLocation are required", p.SPDXID)
		}
		if dl := p.DownloadLocation; dl != "NONE" && dl != "NOASSERTION" {
			if u, err := url.Parse(dl); err != nil || !u.IsAbs() {
				t.Errorf("package %s: downloadLocation %q", p.Name, dl)
			}
		}
		if p.Supplier != "" && !spdxSupplierRE.MatchString(p.Supplier) {
			t.Errorf("package %s: supplier %q", p.Name, p.Supplier)
		}
		if p.PrimaryPackagePurpose != "" && !spdxOneOf(spdxPurposes, p.PrimaryPackagePurpose) {
			t.Errorf("package %s: primaryPackagePurpose %q", p.Name, p.PrimaryPackagePurpose)
		}
		if (p.FilesAnalyzed == nil || *p.FilesAnalyzed) && p.PackageVerificationCode == nil {
			t.Errorf("package %s: filesAnalyzed is (by default) true but there is no packageVerificationCode", p.Name)
		}
		for _, c := range p.Checksums {
			if !spdxOneOf(spdxAlgorithms, c.Algorithm) || c.Algorithm == "SHA256" && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(c.ChecksumValue) {
				t.Errorf("package %s: checksum %s %q", p.Name, c.Algorithm, c.ChecksumValue)
			}
		}
		for _, r := range p.ExternalRefs {
			if r.ReferenceCategory != "PACKAGE-MANAGER" && r.ReferenceCategory != "PACKAGE_MANAGER" && !spdxOneOf("SECURITY PERSISTENT-ID OTHER", r.ReferenceCategory) {
				t.Errorf("package %s: referenceCategory %q", p.Name, r.ReferenceCategory)
			}
			if r.ReferenceType == "purl" && !purlRE.MatchString(r.ReferenceLocator) {
				t.Errorf("package %s: purl %q", p.Name, r.ReferenceLocator)
			}
			switch {
			case strings.HasPrefix(r.ReferenceLocator, "pkg:golang/"):
				goMods = append(goMods, p)
			case strings.HasPrefix(r.ReferenceLocator, "pkg:deb/debian/"):
				debs = append(debs, p)
			}
		}
	}
	describes := len(doc.DocumentDescribes) > 0
	for _, r := range doc.Relationships {
		if !ids[r.SPDXElementID] || !ids[r.RelatedSPDXElement] || !spdxOneOf(spdxRelTypes, r.RelationshipType) {
			t.Errorf("relationship %+v: unknown element or type", r)
		}
		describes = describes || r.SPDXElementID == "SPDXRef-DOCUMENT" && r.RelationshipType == "DESCRIBES"
	}
	if !describes {
		t.Error("the document DESCRIBES nothing")
	}

	// Go: exactly the modules linked into the node program (./init), the
	// main module at the release's version, and the standard library.
	cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}} {{.Version}}{{end}}", "./init")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./init: %v", err)
	}
	wantMods := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, version, _ := strings.Cut(l, " ")
		if path == "github.com/gridnode/gridnode" {
			version = releaseVersion
		}
		wantMods[path] = version
	}
	goVersion, _ := exec.Command("go", "env", "GOVERSION").Output()
	wantMods["stdlib"] = strings.TrimSpace(string(goVersion))
	gotMods := map[string]string{}
	for _, p := range goMods {
		gotMods[p.Name] = p.VersionInfo
	}
	for m, v := range wantMods {
		if gotMods[m] != v {
			t.Errorf("SBOM: Go module %s is at %q, the node program links %q", m, gotMods[m], v)
		}
	}
	for m := range gotMods {
		if _, ok := wantMods[m]; !ok {
			t.Errorf("SBOM lists Go module %s, which the node program does not link", m)
		}
	}

	// Debian: every package of the manifest, with its version and the
	// .deb's SHA256; dpkg-deb agrees on name and version; the kernel,
	// firmware and boot loaders are among them.
	n := 0
	for _, in := range inputs {
		if in.Kind != "deb" && in.Kind != "kernel-deb" {
			continue
		}
		n++
		p, ok := byName[in.Name]
		if !ok {
			t.Errorf("SBOM lacks Debian package %s (manifest: %s)", in.Name, in.Kind)
			continue
		}
		if p.VersionInfo != in.Version || len(p.Checksums) != 1 || p.Checksums[0].ChecksumValue != in.SHA256 || p.Supplier != "Organization: Debian" {
			t.Errorf("SBOM: %s %s %+v, supplier %q; manifest: %s sha256 %s", p.Name, p.VersionInfo, p.Checksums, p.Supplier, in.Version, in.SHA256)
		}
	}
	if len(debs) != n {
		t.Errorf("SBOM lists %d Debian packages, the manifest %d", len(debs), n)
	}
	cached := map[string]string{} // sha256 → .deb in the cache
	paths, _ := filepath.Glob(filepath.Join(root, ".cache", "debs", "*.deb"))
	for _, p := range paths {
		cached[testutil.SHA256File(t, p)] = p
	}
	var names []string
	for _, p := range debs {
		names = append(names, p.Name)
		if len(p.Checksums) != 1 {
			continue
		}
		deb, ok := cached[p.Checksums[0].ChecksumValue]
		if !ok {
			t.Errorf("SBOM: no .deb in .cache/debs has the SHA256 given for %s", p.Name)
			continue
		}
		f, err := exec.Command("dpkg-deb", "--field", deb, "Package", "Version").Output()
		if err != nil {
			t.Errorf("dpkg-deb --field %s: %v", deb, err)
			continue
		}
		if want := "Package: " + p.Name + "\nVersion: " + p.VersionInfo + "\n"; string(f) != want {
			t.Errorf("SBOM says %s %s; dpkg-deb on %s says\n%s", p.Name, p.VersionInfo, filepath.Base(deb), f)
		}
	}
	sort.Strings(names)
	all := " " + strings.Join(names, " ") + " "
	for _, want := range []string{`linux-image-\d\S*-amd64`, "firmware-linux-free", "systemd-boot-efi", "isolinux", "syslinux-common", "ipxe"} {
		if !regexp.MustCompile(` ` + want + ` `).MatchString(all) {
			t.Errorf("SBOM's Debian packages (%s) lack %s", strings.TrimSpace(all), want)
		}
	}
	t.Logf("SBOM: %d packages: %d Go modules (with stdlib), %d Debian packages:%s", len(doc.Packages), len(goMods), len(debs), strings.TrimRight(all, " "))
}

// pushPull publishes release a with `gridnode release push` to an
// in-process OCI registry and pulls it back by tag and by digest; release b
// pushed under another tag has the same digest.
func releasePushPull(t *testing.T, a, b, pub string) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/gridnode/release"
	digest := strings.TrimSpace(runGridnode(t, "release", "push", a, repo+":"+releaseVersion))
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(digest) {
		t.Fatalf("gridnode release push printed %q, want a digest", digest)
	}
	if again := strings.TrimSpace(runGridnode(t, "release", "push", b, repo+":again")); again != digest {
		t.Errorf("the second release pushed as %s, the first as %s: not the same artifact", again, digest)
	}
	for _, ref := range []string{repo + ":" + releaseVersion, repo + "@" + digest} {
		out := filepath.Join(t.TempDir(), "pulled")
		if got := strings.TrimSpace(runGridnode(t, "release", "pull", ref, out, "--key", pub)); got != digest {
			t.Errorf("gridnode release pull %s printed %q, want %s", ref, got, digest)
		}
		sameReleaseTrees(t, a, out)
	}
	// A folder without a signed release.json is refused, unless --unsigned.
	unsigned := t.TempDir()
	os.WriteFile(filepath.Join(unsigned, "vmlinuz"), []byte("kernel"), 0o644)
	out, err := exec.Command(gridnodeCLI(t), "release", "push", unsigned, repo+":unsigned").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unsigned") {
		t.Errorf("gridnode release push of an unsigned folder: %v\n%s", err, out)
	}
	runGridnode(t, "release", "push", "--unsigned", unsigned, repo+":unsigned")
}
