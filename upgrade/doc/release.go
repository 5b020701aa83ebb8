package doc

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// ReleaseName is the file name of the signed release document in a release
// folder and in the release's OCI artifact.
const ReleaseName = "release.json"

// Release names a version and every artifact of it.
type Release struct {
	Version string `json:"version"`
	Files   []File `json:"files"` // sorted by name
}

// File is one artifact of a release.
type File struct {
	Name   string `json:"name"`   // slash-separated path in the release folder
	SHA256 string `json:"sha256"` // lower-case hex
	Size   int64  `json:"size"`
}

// File returns the artifact called name.
func (r *Release) File(name string) (File, bool) {
	for _, f := range r.Files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

var (
	versionRE = regexp.MustCompile(`^[A-Za-z0-9._+-]{1,64}$`)
	sha256RE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidVersion reports whether s can be a release version: 1 to 64 letters,
// digits and . _ + - (it goes into file names and URLs). The registrar
// checks the os_version nodes report with it.
func ValidVersion(s string) bool { return versionRE.MatchString(s) }

// Check reports what is wrong with a release document.
func (r *Release) Check() error {
	if !versionRE.MatchString(r.Version) {
		return fmt.Errorf("release version %q: want 1-64 letters, digits and . _ + -", r.Version)
	}
	if len(r.Files) == 0 {
		return fmt.Errorf("release %s names no files", r.Version)
	}
	for i, f := range r.Files {
		if !SafeName(f.Name) {
			return fmt.Errorf("release %s: file name %q is not a relative path inside the release", r.Version, f.Name)
		}
		if !sha256RE.MatchString(f.SHA256) {
			return fmt.Errorf("release %s: %s: sha256 %q is not 64 lower-case hex digits", r.Version, f.Name, f.SHA256)
		}
		if f.Size < 0 {
			return fmt.Errorf("release %s: %s: negative size", r.Version, f.Name)
		}
		if i > 0 && r.Files[i-1].Name >= f.Name {
			return fmt.Errorf("release %s: files not sorted by name, or %s given twice", r.Version, f.Name)
		}
	}
	return nil
}

// SafeName accepts relative slash paths that stay inside a folder.
func SafeName(s string) bool {
	return s != "" && !strings.HasPrefix(s, "/") && !strings.Contains(s, "\\") && !strings.ContainsRune(s, 0) &&
		path.Clean(s) == s && s != "." && s != ".." && !strings.HasPrefix(s, "../")
}

// SignRelease checks r, sorts its files and returns its envelope signed by
// keys (none: an unsigned envelope, which push refuses without --unsigned).
func SignRelease(r Release, keys ...ed25519.PrivateKey) ([]byte, error) {
	r.Files = append([]File(nil), r.Files...)
	sort.Slice(r.Files, func(i, j int) bool { return r.Files[i].Name < r.Files[j].Name })
	if err := r.Check(); err != nil {
		return nil, err
	}
	return seal(TypeRelease, r, keys...)
}

// OpenRelease decodes a release envelope and verifies it: signed by one of
// keys (with no keys nothing is verified: an unsigned read) and well formed.
func OpenRelease(b []byte, keys []PublicKey) (*Release, error) {
	payload, _, err := open(b, TypeRelease, keys)
	if err != nil {
		return nil, fmt.Errorf("release document: %w", err)
	}
	var r Release
	if err := decodeStrict(payload, &r); err != nil {
		return nil, fmt.Errorf("release document: %w", err)
	}
	if err := r.Check(); err != nil {
		return nil, fmt.Errorf("release document: %w", err)
	}
	return &r, nil
}

// CheckFile compares an artifact's sha256 (raw bytes) and size with the
// document's.
func (f File) CheckFile(sum []byte, size int64) error {
	if got := hex.EncodeToString(sum); got != f.SHA256 || size != f.Size {
		return fmt.Errorf("%s: %d bytes with sha256 %s, the signed release says %d bytes with sha256 %s", f.Name, size, got, f.Size, f.SHA256)
	}
	return nil
}
