// Package release makes and publishes what a gridnode release is besides its
// boot media: an SPDX 2.3 software bill of materials, a SHA256SUMS file, and
// the release folder as one OCI artifact in a registry, pulled back by tag or
// digest.
package release

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gridnode/gridnode/internal/filehash"
)

// Deb is a Debian package whose files went into the image: the kernel,
// firmware, boot loaders.
type Deb struct {
	Name    string // package name, e.g. linux-image-6.1.0-56-amd64
	Version string // Debian version, e.g. 6.1.192-2
	Arch    string // architecture; "" means amd64
	// SHA256 is the hex digest of the .deb file; when empty it is computed
	// from Path.
	SHA256 string
	Path   string // the .deb file (optional when SHA256 is given)
}

// SBOMInput is what SBOM describes.
type SBOMInput struct {
	Version string    // release version
	Epoch   time.Time // SOURCE_DATE_EPOCH: the document's creation time
	// NodeBinary is the compiled node program (/init); its Go modules are
	// read from the build information the Go linker put in it.
	NodeBinary string
	Debs       []Deb
}

// SPDX 2.3 JSON document, only the fields we write.
type (
	spdxDoc struct {
		SPDXVersion       string             `json:"spdxVersion"`
		DataLicense       string             `json:"dataLicense"`
		SPDXID            string             `json:"SPDXID"`
		Name              string             `json:"name"`
		DocumentNamespace string             `json:"documentNamespace"`
		CreationInfo      spdxCreation       `json:"creationInfo"`
		Packages          []spdxPackage      `json:"packages"`
		Relationships     []spdxRelationship `json:"relationships"`
	}
	spdxCreation struct {
		Created  string   `json:"created"`
		Creators []string `json:"creators"`
	}
	spdxPackage struct {
		SPDXID           string         `json:"SPDXID"`
		Name             string         `json:"name"`
		VersionInfo      string         `json:"versionInfo,omitempty"`
		Supplier         string         `json:"supplier,omitempty"`
		DownloadLocation string         `json:"downloadLocation"`
		FilesAnalyzed    bool           `json:"filesAnalyzed"`
		Checksums        []spdxChecksum `json:"checksums,omitempty"`
		ExternalRefs     []spdxRef      `json:"externalRefs,omitempty"`
		PrimaryPurpose   string         `json:"primaryPackagePurpose,omitempty"`
		Comment          string         `json:"comment,omitempty"`
	}
	spdxChecksum struct {
		Algorithm string `json:"algorithm"`
		Value     string `json:"checksumValue"`
	}
	spdxRef struct {
		Category string `json:"referenceCategory"`
		Type     string `json:"referenceType"`
		Locator  string `json:"referenceLocator"`
	}
	spdxRelationship struct {
		Element string `json:"spdxElementId"`
		Type    string `json:"relationshipType"`
		Related string `json:"relatedSpdxElement"`
	}
)

// SBOM writes the SPDX 2.3 JSON bill of materials of a release to w: the
// image as the described package, containing the Go modules linked into the
// node program and the Debian packages used. Same input, same bytes: the
// creation time is the epoch and the document namespace is derived from the
// version and the content.
func SBOM(w io.Writer, in SBOMInput) error {
	if in.Version == "" {
		return fmt.Errorf("release: sbom: no version given")
	}
	bi, err := buildinfo.ReadFile(in.NodeBinary)
	if err != nil {
		return fmt.Errorf("release: sbom: read Go build information of the node program %q: %w", in.NodeBinary, err)
	}
	if in.Epoch.IsZero() {
		in.Epoch = time.Unix(0, 0) // no SOURCE_DATE_EPOCH: still reproducible
	}
	const root = "SPDXRef-Package-gridnode"
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        "gridnode-" + in.Version,
		CreationInfo: spdxCreation{
			Created:  in.Epoch.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: gridnode-" + in.Version},
		},
		Packages: []spdxPackage{{
			SPDXID:           root,
			Name:             "gridnode",
			VersionInfo:      in.Version,
			DownloadLocation: "NOASSERTION",
			PrimaryPurpose:   "OPERATING-SYSTEM",
		}},
		Relationships: []spdxRelationship{{"SPDXRef-DOCUMENT", "DESCRIBES", root}},
	}
	ids := map[string]bool{root: true}
	add := func(p spdxPackage) {
		base := p.SPDXID
		for i := 2; ids[p.SPDXID]; i++ {
			p.SPDXID = fmt.Sprintf("%s-%d", base, i)
		}
		ids[p.SPDXID] = true
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, spdxRelationship{root, "CONTAINS", p.SPDXID})
	}

	add(spdxPackage{
		SPDXID:           spdxID("go", "stdlib"),
		Name:             "stdlib",
		VersionInfo:      bi.GoVersion,
		Supplier:         "Organization: Go",
		DownloadLocation: "https://go.dev/dl/",
		ExternalRefs:     []spdxRef{purl("pkg:golang/stdlib@" + escape(bi.GoVersion))},
		Comment:          "Go toolchain and standard library the node program was built with",
	})
	main := bi.Main
	if main.Version == "" || main.Version == "(devel)" {
		main.Version = in.Version
	}
	mods := append([]*debug.Module{&main}, bi.Deps...)
	for _, m := range mods {
		local := ""
		if r := m.Replace; r != nil && (r.Version == "" || r.Version == "(devel)") {
			// A folder in the tree (go.mod replaces it with a patched copy,
			// third_party/): the module and version it is a copy of, and
			// where the copy lives.
			local = r.Path
		} else if r != nil {
			m = r
		}
		p := spdxPackage{
			SPDXID:           spdxID("go", m.Path),
			Name:             m.Path,
			VersionInfo:      m.Version,
			DownloadLocation: "NOASSERTION",
			ExternalRefs:     []spdxRef{purl("pkg:golang/" + m.Path + "@" + escape(m.Version))},
		}
		if local != "" {
			p.Comment = "patched copy in the source tree at " + local + " (go.mod replace)"
			add(p)
			continue
		}
		if strings.HasPrefix(m.Version, "v") && m != &main {
			p.DownloadLocation = "https://proxy.golang.org/" + m.Path + "/@v/" + m.Version + ".zip"
		}
		// go.sum's h1: hash is a hash over the module's file list, not of
		// an artifact, so SPDX has no checksum algorithm for it.
		if m.Sum != "" {
			p.Comment = "go.sum " + m.Sum
		}
		add(p)
	}
	for _, d := range in.Debs {
		sum := d.SHA256
		if sum == "" {
			if sum, err = fileSHA256(d.Path); err != nil {
				return fmt.Errorf("release: sbom: Debian package %s: %w", d.Name, err)
			}
		}
		if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("release: sbom: Debian package %s: SHA256 %q is not 64 hex digits", d.Name, sum)
		}
		arch := d.Arch
		if arch == "" {
			arch = "amd64"
		}
		add(spdxPackage{
			SPDXID:           spdxID("deb", d.Name),
			Name:             d.Name,
			VersionInfo:      d.Version,
			Supplier:         "Organization: Debian",
			DownloadLocation: "NOASSERTION",
			Checksums:        []spdxChecksum{{"SHA256", sum}},
			ExternalRefs:     []spdxRef{purl("pkg:deb/debian/" + d.Name + "@" + escape(d.Version) + "?arch=" + arch)},
		})
	}

	// The namespace must be unique per document: hash the document made
	// without it, so the same content gets the same namespace.
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	h := sha256.Sum256(body)
	doc.DocumentNamespace = "https://github.com/gridnode/gridnode/spdx/gridnode-" + in.Version + "-" + hex.EncodeToString(h[:16])
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func purl(locator string) spdxRef {
	return spdxRef{"PACKAGE-MANAGER", "purl", locator}
}

// spdxID makes an SPDX identifier (letters, digits, "." and "-") from a
// kind and a name.
func spdxID(kind, name string) string {
	var b strings.Builder
	b.WriteString("SPDXRef-" + kind + "-")
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// escape percent-encodes a purl version: Debian epochs (1:2.3) and "+" must
// not appear raw.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func fileSHA256(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("neither SHA256 nor Path given")
	}
	return filehash.SHA256(path)
}
